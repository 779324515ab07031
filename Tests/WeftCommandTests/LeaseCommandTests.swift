import Foundation
import Testing
import WeftTestSupport

/// Several `weft` processes sharing one embedded store, as the nodes of a one-machine cluster do.
@Suite struct LeaseCommandTests {
    let directory: TemporaryDirectory

    // A failure here fails each test with the error, where `try!` would crash the runner.
    init() throws {
        directory = try TemporaryDirectory()
    }
    var database: String { directory.file("leases.db") }

    /// A network with exactly 15 subnets to hand out: a /24 cut into /28s, the first skipped.
    func storeSmallNetwork() throws {
        let config = try directory.write("net-conf.json", #"{"Network":"10.10.0.0/24","SubnetLen":28,"Backend":{"Type":"vxlan"}}"#)
        let stored = try WeftProcess.run(["config", "put", config, "--store-file", database])
        try #require(stored.status == 0, "\(stored.stderr)")
    }

    @Test("An etcd password file that cannot be read is named, with its flag")
    func unreadablePasswordFile() throws {
        let result = try WeftProcess.run(["leases", "list", "--etcd-endpoints", "http://127.0.0.1:9", "--etcd-username", "root",
                                          "--etcd-password-file", "/nonexistent/etcd-password"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--etcd-password-file /nonexistent/etcd-password: cannot be read"), "\(result.stderr)")
    }

    @Test func twentyRacingProcessesGetFifteenDistinctSubnetsAndFiveClearErrors() throws {
        try storeSmallNetwork()
        let racers = try (1...20).map { node in
            try WeftProcess.Running(["leases", "acquire", "--store-file", database, "--public-ip", "198.18.0.\(node)"])
        }
        let results = racers.map { $0.finish() }
        let winners = results.filter { $0.status == 0 }.map { $0.stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
        let losers = results.filter { $0.status != 0 }
        #expect(winners.count == 15)
        #expect(Set(winners).count == 15, "no subnet given twice: \(winners.sorted())")
        #expect(!winners.contains("10.10.0.0/28"))
        #expect(losers.count == 5)
        for loser in losers {
            #expect(loser.stderr.contains("out of subnets: all 15 /28 subnets from 10.10.0.16 to 10.10.0.240 in 10.10.0.0/24 are leased"),
                    "\(loser.stderr)")
        }
        let listing = try WeftProcess.run(["leases", "list", "--json", "--store-file", database])
        let leases = try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [[String: Any]]
        #expect(Set(leases?.compactMap { $0["subnet"] as? String } ?? []) == Set(winners))
    }

    @Test func aWatcherInAnotherProcessSeesEveryChangeInOrderOnce() throws {
        try storeSmallNetwork()
        // From the first revision: the store holds only the config so far, so the watcher
        // sees exactly the changes below, however late it starts.
        let watcher = try WeftProcess.Running(["leases", "watch", "--json", "--limit", "12", "--from-revision", "1", "--store-file", database])
        defer { watcher.stop() }
        var acquired: [String] = []
        for node in 1...10 {
            let result = try WeftProcess.run(["leases", "acquire", "--store-file", database, "--public-ip", "198.18.0.\(node)"])
            try #require(result.status == 0, "\(result.stderr)")
            acquired.append(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        for subnet in acquired.prefix(2) {
            let revoked = try WeftProcess.run(["leases", "revoke", subnet, "--store-file", database])
            try #require(revoked.status == 0, "\(revoked.stderr)")
        }
        let output = watcher.finish()
        let events = output.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(events.count == 12, "\(output.stdout)\n\(output.stderr)")
        let seen = events.map { "\($0["type"] ?? "?") \($0["subnet"] ?? "?")" }
        #expect(seen == acquired.map { "put \($0)" } + acquired.prefix(2).map { "delete \($0)" })
        let revisions = events.compactMap { $0["revision"] as? Int }
        #expect(revisions.count == 12 && revisions == revisions.sorted() && Set(revisions).count == 12)
    }

    @Test func aLeaseThatExpiresIsGoneForAnotherProcess() throws {
        try storeSmallNetwork()
        // Long enough for the next two processes to start on a loaded machine, which a 1 s TTL was not.
        let short = try WeftProcess.run(["leases", "acquire", "--ttl", "8", "--store-file", database, "--public-ip", "198.18.0.1"])
        try #require(short.status == 0, "\(short.stderr)")
        let lasting = try WeftProcess.run(["leases", "acquire", "--store-file", database, "--public-ip", "198.18.0.2"])
        try #require(lasting.status == 0, "\(lasting.stderr)")
        #expect(try WeftProcess.run(["leases", "--store-file", database]).stdout.contains("198.18.0.1"))
        #expect(try waitUntil(seconds: 40) { !(try WeftProcess.run(["leases", "--store-file", database]).stdout.contains("198.18.0.1")) })
        let after = try WeftProcess.run(["leases", "--store-file", database]).stdout
        #expect(after.contains("198.18.0.2"))
    }

    @Test func withoutANetworkConfigTheErrorSaysWhereItLookedAndWhatToDo() throws {
        let result = try WeftProcess.run(["leases", "acquire", "--store-file", database, "--public-ip", "198.18.0.1"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("no network config: looked for /coreos.com/network/config in \(database)"))
        #expect(result.stderr.contains("weft config put"))
    }

    @Test func revokingAnUnknownLeaseSaysSo() throws {
        try storeSmallNetwork()
        let result = try WeftProcess.run(["leases", "revoke", "10.10.0.32/28", "--store-file", database])
        #expect(result.status != 0)
        #expect(result.stderr.contains("no lease for 10.10.0.32/28"))
    }

    @Test("Reading a store that is not there says so and creates nothing")
    func readingNeverCreatesAStore() throws {
        let typo = directory.file("typo/leases.db")
        for command in [["leases", "list"], ["leases", "watch", "--limit", "1"]] {
            let result = try WeftProcess.run(command + ["--store-file", typo])
            #expect(result.status != 0)
            #expect(result.stderr.contains("no lease store at \(typo)"), "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: typo))
        #expect(!FileManager.default.fileExists(atPath: directory.file("typo")))
    }
}
