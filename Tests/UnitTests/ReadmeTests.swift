import Foundation
import RainConfig
import XCTest

/// docs/configuration.md (which the README points to) documents every configuration key with its default.
final class ReadmeTests: XCTestCase {
    func testEveryConfigurationKeyIsDocumented() throws {
        let page = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("../../docs/configuration.md").standardized, encoding: .utf8)
        for key in Config.keys {
            XCTAssertTrue(page.contains("| `\(key.name)` |"), "docs/configuration.md lacks \(key.name)")
        }
    }
}
