// swift-tools-version: 6.1
// Keel's micro-benchmarks (ordo-one/benchmark): a package of its own, so the project's build and
// CI never compile them. Run from this folder: `swift package benchmark` (README: Performance).
import PackageDescription

let package = Package(
    name: "KeelBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Keel", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "WorkflowRuntime", package: "Keel"),
                .product(name: "KeelCLI", package: "Keel"),
                .product(name: "Activities", package: "Keel"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
