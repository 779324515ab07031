/// Weft's version, as `weft --version`, `weft status` and `/metrics` report it.
public enum WeftVersion {
    public static let current = "0.5.0"
}
