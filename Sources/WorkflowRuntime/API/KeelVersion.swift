/// The version of the Keel package (`worker --version` prints it).
public enum KeelVersion {
    /// Semantic version of this source tree; raised with each release.
    public static let current = "0.5.0"
}
