// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SwiftRain",
    products: [
        .executable(name: "swiftrain", targets: ["Coordinator"]),
        .executable(name: "swiftrain-worker", targets: ["Worker"]),
        .library(name: "Core", targets: ["Core"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C shims: each imported by exactly one Swift file in Core.
        .systemLibrary(
            name: "CZeroMQ", path: "Sources/CZeroMQ", pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(
            name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]),
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),

        .target(
            name: "Core",
            dependencies: [
                "CZeroMQ", "COpenBLAS", "CPNG",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),

        .executableTarget(
            name: "Coordinator",
            dependencies: ["Core", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "Worker",
            dependencies: ["Core", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        .testTarget(name: "CoreTests", dependencies: ["Core"]),
        .testTarget(name: "IntegrationTests", dependencies: ["Core"]),
    ],
    swiftLanguageModes: [.v5]
)
