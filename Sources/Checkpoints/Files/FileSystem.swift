#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The folder part of `path` with its trailing slash ("a/b/c" -> "a/b/", "c" -> ""), ready to
/// prefix a sibling's name.
func folderPrefix(of path: String) -> String {
  path.lastIndex(of: "/").map { String(path[...$0]) } ?? ""
}

/// The message of the last failed system call (`errno`).
func systemError() -> String { String(cString: strerror(errno)) }
