import Checkpoints
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// Paths to the committed fixtures and scratch folders for tests.
public enum Fixtures {
  /// The repository root, found from this file's location.
  public static let root: String = {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
    return path
  }()

  /// The path of `relative` under `fixtures/`.
  public static func path(_ relative: String) -> String { root + "/fixtures/" + relative }

  /// Reads a JSON fixture.
  public static func json(_ relative: String) throws -> JSON {
    try JSON.parse(MappedFile.contents(of: path(relative)), path: relative)
  }

  /// A fresh empty folder under the system temporary folder.
  public static func scratch(_ name: String = "test") -> String {
    var template = Array("/tmp/fedlora-\(name)-XXXXXX".utf8CString)
    let folder = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    scratchFolders.withLock { folders in
      if folders.isEmpty { atexit { Fixtures.removeScratchFolders() } }
      folders.append(folder)
    }
    return folder
  }

  /// Every scratch folder of this test process, removed when it exits: tests leave nothing in /tmp.
  private static let scratchFolders = Locked<[String]>([])

  private static func removeScratchFolders() {
    for folder in scratchFolders.withLock({ $0 }) { remove(folder) }
  }

  /// Removes a scratch folder and what it holds (tests clean up after themselves).
  public static func remove(_ path: String) {
    for name in Checkpoint.listDirectory(path) {
      let entry = path + "/" + name
      var info = stat()
      if lstat(entry, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { remove(entry) } else { unlink(entry) }
    }
    rmdir(path)
  }

  /// Writes bytes to a file (for crafted inputs).
  public static func write(_ bytes: [UInt8], to path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    // `pwrite`, not `write`: this method's name shadows it.
    bytes.withUnsafeBytes { _ = pwrite(fd, $0.baseAddress, $0.count, 0) }
    close(fd)
  }

  /// The bytes of a file.
  public static func read(_ path: String) throws -> [UInt8] { try MappedFile.contents(of: path) }

  /// The expected values of a fixture JSON: numbers, with "nan", "inf" and "-inf" as strings.
  public static func values(_ json: JSON?) -> [Double] {
    (json?.arrayValue ?? []).map { value in
      switch value.stringValue {
      case "nan": .nan
      case "inf": .infinity
      case "-inf": -.infinity
      default: value.doubleValue ?? (value.boolValue.map { $0 ? 1 : 0 } ?? .nan)
      }
    }
  }
}

/// Whether two values agree bit for bit as floats (NaN equals NaN).
public func sameFloat(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }
