// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "weft",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "weft", targets: ["weft"]),
        .executable(name: "weft-cni", targets: ["weft-cni"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // Pure logic: addresses, config, leases, allocation, diffing. No syscalls, no I/O.
        .target(name: "WeftCore"),

        // The system SQLite library (Debian: libsqlite3-dev).
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),

        // The lease store: the etcd-shaped key-value abstraction, its embedded SQLite and
        // etcd (v3 JSON gateway) implementations, and Flannel's subnet layout on top.
        .target(
            name: "WeftStore",
            dependencies: [
                "WeftCore",
                "CSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),

        // libbpf (Debian: libbpf-dev), and the one C adapter that calls it.
        .systemLibrary(
            name: "CLibBPF",
            pkgConfig: "libbpf",
            providers: [.apt(["libbpf-dev"])]
        ),
        .target(
            name: "CWeftBPF",
            dependencies: ["CLibBPF"],
            linkerSettings: [.linkedLibrary("bpf")]
        ),

        // The one error of a failed system call (operation, object, Errno, hint).
        .target(name: "WeftSystem", dependencies: [.product(name: "SystemPackage", package: "swift-system")]),

        // rtnetlink: links, vxlan devices, addresses, routes, neighbours, FDB, change events.
        .systemLibrary(name: "CNetlink"),
        .target(name: "WeftNetlink", dependencies: ["WeftCore", "CNetlink", "WeftSystem"]),

        // Loading, pinning and attaching the TC programs in bpf/, and typed access to their maps.
        .target(name: "WeftBPF", dependencies: ["WeftCore", "CWeftBPF", "CLibBPF", "WeftSystem"]),

        // The dataplane interface the daemon drives, and its BPF and kernel implementations.
        .target(
            name: "WeftDataplane",
            dependencies: [
                "WeftCore", "WeftBPF", "WeftNetlink", "CNetlink", "WeftShell", "WeftSystem",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The node daemon: lease, subnet.env, dataplane, watch, renew, health; one service each.
        .target(
            name: "WeftDaemon",
            dependencies: [
                "WeftCore", "WeftStore", "WeftBPF", "WeftNetlink", "WeftDataplane",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        .executableTarget(
            name: "weft",
            dependencies: [
                "CWeftShell",
                "WeftCore",
                "WeftStore",
                "WeftBPF",
                "WeftDataplane",
                "WeftDaemon",
                "WeftNetlink",
                "WeftShell",
                "WeftSystem",
                "WeftBench",
                "WeftTopology",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The CNI plugin: Flannel's config and delegate rendering (pure), and the executable.
        .target(name: "WeftCNI", dependencies: ["WeftCore"]),
        .executableTarget(name: "weft-cni", dependencies: ["WeftCNI", "WeftCore", "WeftBPF", "WeftDataplane", "WeftShell"]),

        // Benchmark arithmetic and reports: tool output parsing, medians, ratios, JSON, SVG.
        .target(name: "WeftBench", dependencies: ["WeftCore"]),

        // Starting other programs (ip, etcd, iperf3, CNI delegates, clang) and collecting their output;
        // its C part holds the two GNU calls Swift's Glibc module leaves out.
        .target(name: "CWeftShell"),
        .target(name: "WeftShell", dependencies: ["CWeftShell", "WeftSystem"]),

        // Nodes, an underlay and pods made of network namespaces: what the lab, the benchmark
        // and the tests stand a cluster on.
        .target(name: "WeftTopology", dependencies: ["WeftShell"]),

        // Fixtures the test targets share: private directories and bpffs mounts, the weft binary.
        .target(name: "WeftTestSupport", dependencies: ["WeftShell", "WeftTopology", "WeftBPF", .product(name: "Logging", package: "swift-log")],
                path: "Tests/WeftTestSupport"),
        .testTarget(name: "WeftCoreTests", dependencies: ["WeftCore"]),
        .testTarget(name: "WeftStoreTests", dependencies: ["WeftStore", "WeftCore", "WeftTestSupport", "CSQLite"]),
        .testTarget(name: "WeftCommandTests", dependencies: ["WeftCore", "WeftTestSupport"]),
        .testTarget(name: "WeftBPFTests", dependencies: ["WeftBPF", "WeftCore", "WeftTestSupport", "CWeftBPF", "CLibBPF", "WeftSystem", "WeftNetlink"]),
        .testTarget(name: "WeftNetlinkTests", dependencies: ["WeftNetlink", "WeftCore", "WeftTestSupport", "WeftSystem"]),
        .testTarget(name: "WeftDataplaneTests", dependencies: ["WeftDataplane", "WeftCore", "WeftTestSupport"]),
        .testTarget(name: "WeftCNITests", dependencies: ["WeftCNI", "WeftCore", "WeftTestSupport"]),
        .testTarget(name: "WeftLabTests", dependencies: ["WeftTestSupport", "WeftCore", "WeftBPF"]),
        .testTarget(name: "WeftBenchTests", dependencies: ["WeftBench"]),
        .testTarget(name: "WeftShellTests", dependencies: ["WeftShell"]),
        .testTarget(name: "WeftSystemTests", dependencies: ["WeftSystem"]),
        .testTarget(name: "WeftDaemonTests", dependencies: ["WeftDaemon", "WeftDataplane", "WeftStore", "WeftCore", "WeftTestSupport", "CSQLite",
                                                            .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
