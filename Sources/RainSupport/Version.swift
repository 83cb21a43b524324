/// SwiftRain's version, written into the files it produces.
public enum SwiftRainVersion {
    public static let string = "0.1.0"
}
