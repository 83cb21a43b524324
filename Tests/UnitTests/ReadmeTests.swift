import Foundation
import RainConfig
import XCTest

/// The README documents every configuration key with its default.
final class ReadmeTests: XCTestCase {
    func testEveryConfigurationKeyIsDocumented() throws {
        let readme = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("../../README.md").standardized, encoding: .utf8)
        for key in Config.keys { XCTAssertTrue(readme.contains("| `\(key.name)` |"), "README lacks \(key.name)") }
    }
}
