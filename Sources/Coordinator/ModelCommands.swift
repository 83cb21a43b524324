import ArgumentParser
import Core
import Foundation

struct CheckGradientsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-gradients",
        abstract: "Compare forward, backward and Adam steps with a PyTorch fixture; exit non-zero past tolerance.")
    @Option(help: "Fixture directory (shared/fixtures/convlstm-small format).") var fixture: String
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        try SwiftRain.run {
            let rows = try CheckGradients.run(fixture: fixture)
            if json {
                let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted]; enc.keyEncodingStrategy = .convertToSnakeCase
                print(String(decoding: try enc.encode(rows), as: UTF8.self))
            } else {
                print(CheckGradients.table(rows))
            }
            let bad = rows.filter { !$0.ok }
            if !bad.isEmpty {
                stderr("error: \(bad.count) tensor(s) past tolerance: " + bad.map(\.tensor).joined(separator: ", "))
                throw ExitCode(1)
            }
        }
    }
}
