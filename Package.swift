// swift-tools-version:6.0
import PackageDescription

// The target graph is the architecture (../shared/DESIGN.md §1). Dependencies point one way (each
// target lists only targets above it), so a back-edge does not compile; `make lint` also builds with
// the explicit-import check, so a target cannot use a module it does not list.
//
//   RainSupport     errors, RNG, UTC time, checksums
//   RainConfig      ← Support                      (+ Yams)
//   RainData        ← Support, Config
//   RainModel       ← Support, Config, Data        (+ OpenBLAS, oneDNN)
//   RainProtocol    ← Support                      messages, sharding, Transport protocols: no model, no sockets
//   RainZMQ         ← Support, Protocol            (+ libzmq)
//   RainTensorBoard ← Support                      TensorBoard event files (TFRecord, hand-encoded protobuf)
//   RainTraining    ← Support … Model, Protocol, TensorBoard   state machines; never a socket
//   RainLaunch      ← Training, ZMQ                processes, SLURM, the wiring
//   RainNetCDF      ← Support                      (+ libnetcdf) NetCDF files, read and written
//   RainZarr        ← Support                      (+ libblosc, libzstd, zlib) Zarr v2/v3 stores, read and written
//   RainConvert     ← Support, Data, NetCDF, Zarr  WeatherBench / IMERG / SimSat / Zarr stores → RainBench's layout
//   RainEvaluation  ← Support … Model, Training, NetCDF, Zarr, TensorBoard
//   RainPlot        ← Evaluation                   (+ Cairo)
//   RainSuite       ← Training, Evaluation, Plot   grids of runs (child processes, SLURM arrays), Table 1
//   swiftrain       ← Launch, Evaluation, Plot, Suite;   swiftrain-worker ← Launch

let release: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "SwiftRain",
    products: [
        .executable(name: "swiftrain", targets: ["Coordinator"]),
        .executable(name: "swiftrain-worker", targets: ["Worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C libraries: each imported by exactly one Swift file.
        .systemLibrary(
            name: "CZeroMQ", path: "Sources/CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(
            name: "CCairo", path: "Sources/CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),
        .systemLibrary(
            name: "CNetCDF", path: "Sources/CNetCDF", pkgConfig: "netcdf", providers: [.apt(["libnetcdf-dev"])]),
        .systemLibrary(
            name: "CZarrCodecs", path: "Sources/CZarrCodecs",
            providers: [.apt(["libblosc-dev", "libzstd-dev", "zlib1g-dev"])]),
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),

        /// The fused, vectorised LSTM gates and their exp/tanh (one body per instruction set, chosen at run time).
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off"])]),
        /// The machine's FP32 peak (an FMA loop per instruction set, chosen at run time): `bench step`'s yardstick.
        .target(name: "CPeak", path: "Sources/CPeak", cSettings: [.unsafeFlags(["-O2"])]),

        /// Errors, the seeded RNG, UTC time, checksums, text and process helpers.
        .target(name: "RainSupport", swiftSettings: release),
        /// The configuration: one YAML key table with PyRain's names and defaults.
        .target(
            name: "RainConfig", dependencies: ["RainSupport", .product(name: "Yams", package: "Yams")],
            swiftSettings: release),
        /// RainBench's datasets: metadata, mapped files, sample index and assembly, normalisation, synthesis.
        .target(name: "RainData", dependencies: ["RainSupport", "RainConfig"], swiftSettings: release),
        /// The ConvLSTM forecaster on OpenBLAS, Adam, the scheduler, and running samples through it.
        .target(
            name: "RainModel",
            dependencies: ["RainSupport", "RainConfig", "RainData", "COpenBLAS", "CPeak", "CKernels", "CDNNL"],
            swiftSettings: release),
        /// What and when: messages, sharding, transports as protocols and their in-memory twin. No sockets.
        .target(name: "RainProtocol", dependencies: ["RainSupport"], swiftSettings: release),
        /// How bytes move: the ZeroMQ transport, CURVE/ZAP, the ring allreduce.
        .target(name: "RainZMQ", dependencies: ["RainSupport", "RainProtocol", "CZeroMQ"], swiftSettings: release),
        /// TensorBoard event files written natively: TFRecord framing around hand-encoded protobuf events.
        .target(name: "RainTensorBoard", dependencies: ["RainSupport"], swiftSettings: release),
        /// The coordinator and worker state machines, checkpoints, the run directory, training options.
        .target(
            name: "RainTraining",
            dependencies: [
                "RainSupport", "RainConfig", "RainData", "RainModel", "RainProtocol", "RainTensorBoard", argumentParser,
            ],
            swiftSettings: release),
        /// Local processes, SLURM and torchrun environments, ZeroMQ wiring, the distributed benchmarks.
        .target(
            name: "RainLaunch",
            dependencies: [
                "RainSupport", "RainConfig", "RainData", "RainModel", "RainProtocol", "RainZMQ", "RainTraining",
            ],
            swiftSettings: release),
        /// NetCDF files through libnetcdf: forecasts written, WeatherBench-style inputs read.
        .target(name: "RainNetCDF", dependencies: ["RainSupport", "CNetCDF"], swiftSettings: release),
        /// Zarr v2 and v3 stores read chunk by chunk (Blosc, Zstandard, gzip, sharding) and written (v2, Blosc).
        .target(name: "RainZarr", dependencies: ["RainSupport", "CZarrCodecs"], swiftSettings: release),
        /// Converters from WeatherBench, IMERG and SimSat NetCDF files to RainBench's memory-mapped layout.
        .target(
            name: "RainConvert", dependencies: ["RainSupport", "RainConfig", "RainData", "RainNetCDF", "RainZarr"],
            swiftSettings: release),
        /// Scores, baselines, evaluation of a run, export for PyTorch, forecasts as NetCDF.
        .target(
            name: "RainEvaluation",
            dependencies: [
                "RainSupport", "RainConfig", "RainData", "RainModel", "RainTraining", "RainNetCDF", "RainZarr",
                "RainTensorBoard",
            ],
            swiftSettings: release),
        /// Figures: Cairo, with a TrueType font and coastlines from the land–sea mask.
        .target(
            name: "RainPlot",
            dependencies: [
                "RainSupport", "RainConfig", "RainData", "RainModel", "RainTraining", "RainEvaluation", "CCairo",
            ],
            swiftSettings: release),

        /// `swiftrain suite`: a grid of runs and the paper's Table 1 from them.
        .target(
            name: "RainSuite",
            dependencies: ["RainSupport", "RainConfig", "RainData", "RainTraining", "RainEvaluation", "RainPlot"],
            swiftSettings: release),

        // Thin executables: argument parsing, then a library call.
        .executableTarget(
            name: "Coordinator",
            dependencies: [
                "RainSupport", "RainConfig", "RainData", "RainModel", "RainTraining", "RainLaunch", "RainEvaluation",
                "RainPlot", "RainConvert", "RainNetCDF", "RainSuite", argumentParser,
            ]),
        .executableTarget(name: "Worker", dependencies: ["RainSupport", "RainModel", "RainLaunch", argumentParser]),

        .testTarget(
            name: "UnitTests",
            dependencies: [
                "RainSupport", "RainConfig", "RainData", "RainModel", "RainProtocol", "RainZMQ", "RainTraining",
                "RainLaunch", "RainEvaluation", "RainPlot", "RainNetCDF", "RainSuite", "RainTensorBoard",
            ]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "RainSupport", "RainConfig", "RainData", "RainModel", "RainProtocol", "RainZMQ", "RainTraining",
                "RainEvaluation", "RainNetCDF", "RainConvert", "RainSuite", "RainZarr", "RainLaunch",
            ]),
    ],
    swiftLanguageModes: [.v5]
)
