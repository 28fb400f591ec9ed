// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "dlion",
    products: [
        .library(name: "Collectives", targets: ["Collectives"]),
        .library(name: "Training", targets: ["Training"]),
        .executable(name: "dlion-train", targets: ["dlion-train"]),
        .executable(name: "mpi-conformance", targets: ["mpi-conformance"]),
        .executable(name: "collectives-bench", targets: ["collectives-bench"]),
        .executable(name: "gemm-bench", targets: ["gemm-bench"]),
        .executable(name: "transformer-bench", targets: ["transformer-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        .target(name: "CVectorOps"),
        .target(name: "Collectives", dependencies: ["CMPI", "CVectorOps"]),
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "Training", dependencies: ["Collectives", "CVectorOps", "CBLAS", "CZlib"]),
        .executableTarget(
            name: "dlion-train",
            dependencies: ["Training", "Collectives", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "mpi-conformance",
            dependencies: ["Collectives", "Training"],
            path: "Tests/Conformance"
        ),
        .target(
            name: "BenchmarkSupport",
            path: "benchmarks/BenchmarkSupport"
        ),
        .executableTarget(
            name: "collectives-bench",
            dependencies: ["Collectives", "BenchmarkSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "benchmarks/collectives-bench"
        ),
        .executableTarget(
            name: "gemm-bench",
            dependencies: ["Training", "Collectives", "BenchmarkSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "benchmarks/gemm-bench"
        ),
        .executableTarget(
            name: "transformer-bench",
            dependencies: ["Training", "Collectives", "BenchmarkSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "benchmarks/transformer-bench"
        ),
        .testTarget(
            name: "TrainingTests",
            dependencies: ["Training", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(
            name: "CollectivesTests",
            dependencies: ["Collectives", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
