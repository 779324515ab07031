import Foundation

/// flanneld's command line as Weft's daemon reads it. flanneld parses with Go's `flag`
/// package, which accepts `-flag` as well as `--flag`, `--flag=value` for booleans, and Go's
/// boolean spellings; its deployments (kube-flannel.yml, systemd units) use all of them.
/// `normalize` rewrites such a command line into the form `weft daemon` parses, so the same
/// lines work unchanged.
public enum FlanneldCommandLine {
    /// Go's `strconv.ParseBool`: 1, t, T, TRUE, true, True and their false counterparts.
    public static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "TRUE", "true", "True": true
        case "0", "f", "F", "FALSE", "false", "False": false
        default: nil
        }
    }

    /// klog's `-v=N` as a log level: flanneld logs its normal operation at 0, detail at
    /// 1 to 4 and everything from 5 on.
    public static func logLevel(verbosity: Int) -> String {
        switch verbosity {
        case ...0: "info"
        case 1...4: "debug"
        default: "trace"
        }
    }

    /// What could not be read, naming the argument and what it takes.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Rewrites flanneld's spellings into Weft's: single-dash long flags take two dashes;
    /// a boolean flag's `=value` is read with Go's spellings (false drops the flag);
    /// `-v=N` becomes `--log-level`. Anything else is passed on unchanged.
    /// - Parameters:
    ///   - booleanFlags: the daemon's boolean flags, without dashes.
    ///   - onByDefault: those of them that are on unless turned off: their false becomes `--no-<flag>`.
    public static func normalize(_ arguments: [String], booleanFlags: Set<String>, onByDefault: Set<String> = []) throws(Problem) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                result += arguments[(index - 1)...]
                break
            }
            guard argument.hasPrefix("-"), argument.count > 2 else {
                result.append(argument)
                continue
            }
            // -iface, --iface: one form.
            let body = argument.hasPrefix("--") ? String(argument.dropFirst(2)) : String(argument.dropFirst())
            let name = String(body.prefix { $0 != "=" })
            let value: String? = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
            if let advice = unsupportedFlags[name] {
                throw Problem(description: "\(argument): weft daemon does not implement flanneld's --\(name): \(advice)")
            }
            if name == "v" {
                guard let text = value ?? (index < arguments.count ? arguments[index] : nil), let verbosity = Int(text) else {
                    throw Problem(description: "\(argument): -v takes a number, such as -v=2")
                }
                if value == nil { index += 1 }
                result += ["--log-level", logLevel(verbosity: verbosity)]
                continue
            }
            if booleanFlags.contains(name), let value {
                guard let enabled = parseBool(value) else {
                    throw Problem(description: "\(argument): --\(name) takes true or false (or 1, 0, t, f)")
                }
                if enabled {
                    result.append("--\(name)")
                } else if onByDefault.contains(name) {
                    result.append("--no-\(name)")
                }
                continue
            }
            result.append(value.map { "--\(name)=\($0)" } ?? "--\(name)")
        }
        return result
    }

    /// flanneld's flags that `weft daemon` does not implement, and what to use instead. A
    /// command line or a `FLANNELD_*` variable naming one gets a clear error or warning.
    public static let unsupportedFlags: [String: String] = [
        "subnet-lease-renew-margin-seconds": "use --subnet-lease-renew-margin (minutes)",
        "net-config-path-v6": "Weft runs IPv4 only",
        "public-ipv6": "Weft runs IPv4 only",
        "auto-detect-ipv6": "Weft runs IPv4 only",
        "charon-executable-path": "Weft has no ipsec backend",
        "charon-viciurl": "Weft has no ipsec backend",
    ]

    /// The `FLANNELD_*` variables in `environment` that name flags `weft daemon` lacks,
    /// each with what to do; `known` are the daemon's own flag names.
    public static func unsupportedVariables(in environment: [String: String], known: Set<String>) -> [(variable: String, advice: String)] {
        environment.keys.filter { $0.hasPrefix("FLANNELD_") }.sorted().compactMap { variable in
            let flag = variable.dropFirst("FLANNELD_".count).lowercased().replacingOccurrences(of: "_", with: "-")
            guard !known.contains(flag) else { return nil }
            return (variable, unsupportedFlags[flag] ?? "weft daemon has no --\(flag); it is ignored")
        }
    }
}
