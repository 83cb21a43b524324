// The only file that imports CPNG (libpng, through its simplified write API).
import CPNG
import RainSupport

/// Writes 8-bit RGB images as PNG with libpng.
public enum PNG {
    /// `rgb` holds width × height × 3 bytes, rows top to bottom.
    public static func write(path: String, width: Int, height: Int, rgb: [UInt8]) throws {
        precondition(rgb.count == width * height * 3)
        var message = [CChar](repeating: 0, count: 256)
        let ok = rgb.withUnsafeBufferPointer {
            swiftrain_png_write_rgb(path, UInt32(width), UInt32(height), $0.baseAddress, &message, message.count)
        }
        guard ok == 1 else {
            throw SwiftRainError(
                path, "cannot write the PNG: \(String(cString: message))",
                hint: "check the directory exists and is writable")
        }
    }
}
