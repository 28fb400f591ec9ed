// swift-tools-version:6.0
// libFuzzer targets for dlion's readers of untrusted files. Library users never build this
// package; fuzz/run.sh builds it with -sanitize=fuzzer,address and runs each target.
import PackageDescription

let package = Package(
    name: "dlion-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "CFuzzer"),
        .target(name: "FuzzDriver", dependencies: ["CFuzzer"]),
        .executableTarget(name: "fuzz-idx", dependencies: ["FuzzDriver", .product(name: "Training", package: "main")]),
        .executableTarget(name: "fuzz-text", dependencies: ["FuzzDriver", .product(name: "Training", package: "main")]),
        .executableTarget(name: "fuzz-checkpoint", dependencies: ["FuzzDriver", .product(name: "Training", package: "main")]),
    ],
    swiftLanguageModes: [.v6]
)
