// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Keel",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WorkflowRuntime", targets: ["WorkflowRuntime"]),
        .library(name: "KeelSQLite", targets: ["KeelSQLite"]),
        .library(name: "KeelPostgres", targets: ["KeelPostgres"]),
        .library(name: "WorkflowTesting", targets: ["WorkflowTesting"]),
        .library(name: "KeelCLI", targets: ["KeelCLI"]),
        .library(name: "Workflows", targets: ["Workflows"]),
        .library(name: "Activities", targets: ["Activities"]),
        .library(name: "KeelProcess", targets: ["KeelProcess"]),
        .executable(name: "worker", targets: ["worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(
            name: "WorkflowRuntime",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "KeelSQLite",
            dependencies: ["WorkflowRuntime", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(
            name: "KeelPostgres",
            dependencies: [
                "WorkflowRuntime",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "WorkflowTesting",
            dependencies: ["WorkflowRuntime", "KeelSQLite", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Activities",
            dependencies: [
                "WorkflowRuntime", "KeelSQLite", "KeelPostgres",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "Workflows", dependencies: ["WorkflowRuntime", "Activities"]),
        .target(name: "KeelProcess", dependencies: [.product(name: "Subprocess", package: "swift-subprocess")]),
        .target(
            name: "KeelCLI",
            dependencies: [
                "WorkflowRuntime", "KeelSQLite", "KeelPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "worker",
            dependencies: [
                "KeelCLI", "Workflows", "Activities", "WorkflowRuntime", "KeelSQLite", "KeelPostgres", "KeelProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "KeelTestSupport",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/Support"
        ),
        .testTarget(
            name: "WorkflowRuntimeTests",
            dependencies: [
                "WorkflowRuntime", "KeelSQLite", "KeelPostgres", "KeelCLI", "WorkflowTesting", "Workflows", "Activities",
                "KeelTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("GoldenHistories"), .copy("ReplayCases")]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "WorkflowRuntime", "KeelSQLite", "KeelPostgres", "KeelCLI", "Workflows", "Activities", "worker",
                "KeelTestSupport", "KeelProcess",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
