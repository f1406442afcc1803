import Dispatch
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// The temporaries this process has made and not yet renamed into place or removed, so that a
/// signal handler can remove them before the process exits, and the recognition of those a
/// killed run left behind.
///
/// A temporary is named `.NAME.fedlora-PID-N` beside (or, in an existing output folder,
/// inside) its destination `NAME`: hidden, and recognisably fedlora's and whose.
public enum Temporaries {
  private static let lock = DispatchQueue(label: "fedlora.temporaries")
  nonisolated(unsafe) private static var live: [String: Bool] = [:]  // path -> is a folder
  nonisolated(unsafe) private static var closed = false
  /// Parent folders an output needed and a run created, removed (when empty) unless it commits.
  nonisolated(unsafe) private static var createdFolders: [String] = []

  /// Removes every live temporary; later attempts to make one fail. For signal handlers: the
  /// process is about to exit.
  public static func removeAll() {
    lock.sync {
      closed = true
      for (path, isFolder) in live { remove(path, isFolder: isFolder) }
      live = [:]
      for folder in createdFolders.reversed() { rmdir(folder) }
      createdFolders = []
    }
  }

  /// Creates the temporary file `path` (to become `destination`) and registers it, in one step
  /// that `removeAll` cannot interleave with.
  static func createFile(_ path: String, becoming destination: String) throws(CheckpointError) -> OutputFile {
    try whileOpen { () throws(CheckpointError) in
      let file = try OutputFile(temporary: path, becoming: destination)
      live[path] = false
      return file
    }
  }

  /// Creates the temporary folder `path` (to become `destination`) and registers it.
  static func createFolder(_ path: String, becoming destination: String) throws(CheckpointError) {
    try whileOpen { () throws(CheckpointError) in
      guard mkdir(path, 0o755) == 0 else { throw .writeFailed(path: destination, message: systemError()) }
      live[path] = true
    }
  }

  /// Creates the missing parent folder `path` of `destination` and registers it: removed (if
  /// empty) by ``removeAll()`` or ``discardFolders(_:)``, kept by ``keepFolders(_:)``.
  static func createFolder(_ path: String, for destination: String) throws(CheckpointError) {
    try whileOpen { () throws(CheckpointError) in
      guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
        throw .writeFailed(path: destination, message: "cannot create its folder \(path): \(systemError())")
      }
      createdFolders.append(path)
    }
  }

  /// Removes the created parent folders `folders` that are still empty, deepest first, and forgets them.
  static func discardFolders(_ folders: [String]) {
    lock.sync {
      for folder in folders.reversed() { rmdir(folder) }
      createdFolders.removeAll { folders.contains($0) }
    }
  }

  /// Forgets the created parent folders `folders`: the output they hold is in place.
  static func keepFolders(_ folders: [String]) {
    lock.sync { createdFolders.removeAll { folders.contains($0) } }
  }

  /// Creates a subfolder inside a registered temporary folder (removed with it).
  static func createSubfolder(_ path: String, becoming destination: String) throws(CheckpointError) {
    try whileOpen { () throws(CheckpointError) in
      guard mkdir(path, 0o755) == 0 || (errno == EEXIST && fileType(path) == S_IFDIR) else {
        throw .writeFailed(path: destination, message: systemError())
      }
    }
  }

  /// Creates a file inside a registered temporary folder (removed with it).
  static func createFile(inFolder path: String, becoming destination: String) throws(CheckpointError) -> OutputFile {
    try whileOpen { () throws(CheckpointError) in try OutputFile(temporary: path, becoming: destination) }
  }

  /// Renames the temporary `path` to `destination` and forgets it.
  static func moveIntoPlace(_ path: String, _ destination: String) throws(CheckpointError) {
    try whileOpen { () throws(CheckpointError) in
      guard rename(path, destination) == 0 else { throw .writeFailed(path: destination, message: systemError()) }
      live[path] = nil
    }
  }

  /// Runs `body` under the lock unless `removeAll` has run; then the calling thread waits for
  /// the exit the signal handler is making (an error of its own would race it to another
  /// exit status).
  private static func whileOpen<T>(_ body: () throws(CheckpointError) -> T) throws(CheckpointError) -> T {
    let result = lock.sync { closed ? nil : Result { () throws(CheckpointError) in try body() } }
    guard let result else {
      while true { pause() }
    }
    return try result.get()
  }

  /// Removes the temporary `path` (a failed or abandoned output) and forgets it.
  static func discard(_ path: String) {
    lock.sync {
      guard let isFolder = live.removeValue(forKey: path) else { return }
      remove(path, isFolder: isFolder)
    }
  }

  /// A fresh temporary name for `name`.
  static func name(for name: String) -> String {
    ".\(name).fedlora-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
  }

  /// The process id in a temporary's name, when `entry` is a temporary of `name` (of any name
  /// when nil). The `.old` folders of earlier versions are not matched: they may hold a user's
  /// files.
  static func owner(of entry: String, for name: String?) -> pid_t? {
    let parts = entry.split(separator: ".", omittingEmptySubsequences: false)
    // "", NAME parts..., "fedlora-PID-N"
    guard parts.count >= 3, parts[0].isEmpty, let last = parts.last, last.hasPrefix("fedlora-") else { return nil }
    if let name, parts.dropFirst().dropLast().joined(separator: ".") != name { return nil }
    let numbers = last.dropFirst("fedlora-".count).split(separator: "-", omittingEmptySubsequences: false)
    guard numbers.count == 2, let pid = pid_t(numbers[0]), UInt32(numbers[1]) != nil, pid > 0 else { return nil }
    return pid
  }

  /// Removes what a killed run (one whose process is gone) left for `destination`: its
  /// temporaries beside it and, in an existing output folder, inside it.
  static func removeStale(for destination: String) {
    let name = lastComponent(destination)
    var places: [(folder: String, name: String?)] = []
    if name != "." && name != ".." && !name.isEmpty { places.append((folderPrefix(of: destination), name)) }
    if fileType(destination) == S_IFDIR { places.append((destination + "/", nil)) }
    for (folder, name) in places {
      for entry in directoryEntries(of: folder.isEmpty ? "." : folder) {
        guard let pid = owner(of: entry, for: name), !isRunning(pid) else { continue }
        let path = folder + entry
        remove(path, isFolder: entryType(path) == S_IFDIR)
      }
    }
  }

  private static func isRunning(_ pid: pid_t) -> Bool {
    pid == getpid() || kill(pid, 0) == 0 || errno == EPERM
  }

  /// Removes a temporary file, or a temporary folder with the files in it and in its
  /// subfolders (a sentence-transformers module's; fedlora never makes deeper ones: anything
  /// else inside stays, and so does the folder).
  private static func remove(_ path: String, isFolder: Bool, depth: Int = 0) {
    guard isFolder else {
      unlink(path)
      return
    }
    for name in directoryEntries(of: path) {
      switch entryType(path + "/" + name) {
      case S_IFREG?: unlink(path + "/" + name)
      case S_IFDIR? where depth == 0: remove(path + "/" + name, isFolder: true, depth: 1)
      default: break
      }
    }
    rmdir(path)
  }
}
