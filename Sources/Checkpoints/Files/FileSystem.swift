#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// The folder part of `path` with its trailing slash ("a/b/c" -> "a/b/", "c" -> ""), ready to
/// prefix a sibling's name.
func folderPrefix(of path: String) -> String {
  path.lastIndex(of: "/").map { String(path[...$0]) } ?? ""
}

/// The folder that holds the file at `path` ("a/b/c" -> "a/b", "c" -> ".", "/c" -> "/").
func parentFolder(of path: String) -> String {
  guard let slash = path.lastIndex(of: "/") else { return "." }
  return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// The message of the last failed system call (`errno`).
func systemError() -> String { String(cString: strerror(errno)) }

/// The names in a folder (without `.` and `..`), sorted.
func directoryEntries(of path: String) -> [String] {
  guard let dir = opendir(path) else { return [] }
  defer { closedir(dir) }
  var names: [String] = []
  while let entry = readdir(dir) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    if name != "." && name != ".." { names.append(name) }
  }
  return names.sorted()
}

/// The file type bits of `path` (following symlinks), or nil when nothing is there.
func fileType(_ path: String) -> mode_t? {
  var info = stat()
  return stat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
}

/// `path` without trailing slashes ("out/" -> "out"; "/" stays "/").
package func trimmingTrailingSlashes(_ path: String) -> String {
  var path = Substring(path)
  while path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
  return String(path)
}

/// The last component of `path` ("a/b" -> "b").
func lastComponent(_ path: String) -> String { String(path.dropFirst(folderPrefix(of: path).count)) }

/// The file type bits of `path` itself (a symlink is a symlink), or nil when nothing is there.
func entryType(_ path: String) -> mode_t? {
  var info = stat()
  return lstat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
}

/// `path` in one lexical normal form, so that one file spelled two ways is recorded alike:
/// `.` components, repeated and trailing slashes dropped ("./a//b/" -> "a/b", "." stays ".").
/// `..` is kept: through a symlink it need not cancel the component before it.
package func normalizedPath(_ path: String) -> String {
  let absolute = path.hasPrefix("/")
  let parts = path.split(separator: "/").filter { $0 != "." }
  let joined = (absolute ? "/" : "") + parts.joined(separator: "/")
  return joined.isEmpty ? "." : joined
}
