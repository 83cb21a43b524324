import ArgumentParser
import Foundation
import RainData
import RainModel
import RainSupport

@main
struct SwiftRain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftrain",
        abstract: "Distributed RainBench precipitation forecasting on CPUs.",
        subcommands: [
            Synth.self, Inspect.self, Normalize.self, SampleCommand.self, TrainCommand.self, CheckpointCommand.self,
            EvalCommand.self, BaselinesCommand.self, PredictCommand.self, PlotCommand.self, ExportCommand.self,
            ImportCommand.self, ConvertCommand.self, SuiteCommand.self, KeysCommand.self, LaunchCommand.self,
            Bench.self, CheckGradientsCommand.self,
        ])

    /// Before anything else: OpenBLAS's kernel can only be changed by re-executing (see `BLASKernel`).
    static func main() {
        BLASKernel.ensureBest()
        main(nil)
    }

    /// Runs `body`, printing SwiftRain's errors as plain messages (no stack trace) with exit code 1.
    static func run(_ body: () throws -> Void) throws {
        do { try body() } catch let e as UserFacingError {
            try? FileHandle.standardError.write(contentsOf: Data("error: \(e)\n".utf8))
            throw ExitCode(1)
        }
    }
}

func stderr(_ s: String) { try? FileHandle.standardError.write(contentsOf: Data((s + "\n").utf8)) }

/// Prints a benchmark or report as JSON (snake_case keys, sorted, indented).
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    enc.keyEncodingStrategy = .convertToSnakeCase
    print(String(decoding: try enc.encode(value), as: UTF8.self))
}

/// A benchmark's table, followed by its JSON with --json.
func printTable<T: Encodable>(_ table: String, _ value: T, json: Bool) throws {
    print(table)
    if json { try printJSON(value) }
}
