// swift-tools-version:6.0
// Uses dlion from outside, as any other SwiftPM package would.
import PackageDescription

let package = Package(
    name: "dlion-examples",
    dependencies: [
        .package(name: "dlion", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "collectives-example",
            dependencies: [.product(name: "Collectives", package: "dlion")]
        ),
        .executableTarget(
            name: "lion-example",
            dependencies: [.product(name: "Collectives", package: "dlion"), .product(name: "Training", package: "dlion")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
