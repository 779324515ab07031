import NIOSSL

/// A TLS failure talking to etcd that the operator must fix in the configuration: the
/// server's certificate is not one the flags trust, or does not name the server. Unlike a
/// refused or timed-out connection it does not go away by waiting, so the daemon stops at
/// start with it rather than retrying forever.
enum EtcdTLSProblem {
    /// BoringSSL's packed code for "certificate verify failed" (library SSL, reason 125),
    /// the number NIOSSL's error description starts with.
    static let certificateVerifyFailed: UInt32 = 0x1000_007d

    /// What is wrong and which flag fixes it, or nil when `error` is no such problem.
    static func explain(_ error: any Error, endpoint: String, caFile: String?) -> String? {
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            return "\(endpoint): the server's certificate does not name this address; connect by a name or IP its certificate holds (in --etcd-endpoints), or reissue it"
        }
        guard case NIOSSLError.handshakeFailed(.sslError(let stack))? = error as? NIOSSLError,
              stack.contains(where: { code(of: $0) == certificateVerifyFailed }) else { return nil }
        if let caFile {
            return "\(endpoint): the server's certificate is not signed by the CA in --etcd-cafile \(caFile); give the CA that signed etcd's certificate"
        }
        return "\(endpoint): the server's certificate is not signed by a CA this system trusts; give the CA that signed it with --etcd-cafile"
    }

    /// NIOSSL keeps the code private and prints it first: "Error: 268435581 error:1000007d:...".
    private static func code(of error: BoringSSLInternalError) -> UInt32? {
        let words = error.description.split(separator: " ")
        return words.count > 1 && words[0] == "Error:" ? UInt32(words[1]) : nil
    }
}
