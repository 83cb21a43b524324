import ArgumentParser
import Foundation
import RainLaunch
import RainModel
import RainSupport

/// One worker process: started by `swiftrain train`, by SLURM's srun, or by hand.
@main
struct SwiftRainWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftrain-worker", abstract: "One SwiftRain training worker.")
    @OptionGroup var options: WorkerOptions

    /// Before anything else: OpenBLAS's kernel can only be changed by re-executing (see `BLASKernel`).
    static func main() {
        BLASKernel.ensureBest()
        main(nil)
    }

    func run() throws {
        do {
            try WorkerProcess.run(
                options, log: { try? FileHandle.standardError.write(contentsOf: Data(($0 + "\n").utf8)) })
        } catch let e as UserFacingError {
            try? FileHandle.standardError.write(contentsOf: Data("swiftrain-worker: error: \(e)\n".utf8))
            throw ExitCode(1)
        }
    }
}
