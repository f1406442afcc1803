#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// Hugging Face model ids (`owner/name`, `owner/name@revision`) resolved from the local cache,
/// offline: `models--OWNER--NAME/refs/REVISION` (default `main`) names the commit whose
/// `snapshots/COMMIT/` folder holds the files (links into `blobs/`, which ``ModelFolder``
/// follows). A revision may also be a commit hash. fedlora never downloads anything.
public enum HubCache {
  /// The cache folder, as the Hub's libraries choose it: `$HF_HUB_CACHE`, else `$HF_HOME/hub`,
  /// else `~/.cache/huggingface/hub`.
  public static var root: String {
    func variable(_ name: String) -> String? {
      getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }
    if let hub = variable("HF_HUB_CACHE") { return hub }
    if let home = variable("HF_HOME") { return home + "/hub" }
    return (variable("HOME") ?? "") + "/.cache/huggingface/hub"
  }

  /// The snapshot folder `argument` names when it is not an existing path but has the form of a model
  /// id.
  ///
  /// Nothing is downloaded: the id must be in the local cache (``root``).
  ///
  /// - Parameter argument: a path, or a Hugging Face id `owner/name[@revision]` (a branch, tag or
  ///   40-digit commit).
  /// - Returns: the snapshot folder; nil when `argument` is an existing path.
  /// - Throws: ``CheckpointError``: `not-found` when nothing is there and the argument names a local
  ///   path (it starts with `.`, `/` or `~`, has more than one `/`, or its first part exists here);
  ///   `not-cached`, naming where it looked, for an id that is not cached.
  public static func snapshot(for argument: String) throws(CheckpointError) -> String? {
    guard entryType(argument) == nil else { return nil }
    guard !namesLocalPath(argument), let (owner, name, revision) = parse(argument) else {
      throw .notFound(path: argument, existing: deepestExisting(argument))
    }
    let entry = root + "/models--\(owner)--\(name)"
    let ref = entry + "/refs/" + revision
    if Checkpoint.isFile(ref) {
      let commit = String(decoding: try MappedFile.contents(of: ref), as: UTF8.self).trimmingCharacters(in: " \n\r\t")
      let folder = entry + "/snapshots/" + commit
      guard parse("x/x@" + commit) != nil, Checkpoint.isDirectory(folder) else {
        throw .notCached(id: argument, looked: [ref + " -> " + folder])
      }
      return folder
    }
    // A commit hash given as the revision names its snapshot directly.
    if revision.count == 40, revision.allSatisfy(\.isHexDigit), Checkpoint.isDirectory(entry + "/snapshots/" + revision)
    {
      return entry + "/snapshots/" + revision
    }
    throw .notCached(id: argument, looked: [ref, entry + "/snapshots/" + revision])
  }

  /// Whether `argument` can only mean a local path, never a model id.
  static func namesLocalPath(_ argument: String) -> Bool {
    let first = argument.split(separator: "/", omittingEmptySubsequences: false).first.map(String.init) ?? ""
    return argument.hasPrefix(".") || argument.hasPrefix("/") || argument.hasPrefix("~")
      || argument.filter({ $0 == "/" }).count > 1 || entryType(first) != nil
  }

  /// The longest leading part of `path` that exists, if any.
  static func deepestExisting(_ path: String) -> String? {
    var part = trimmingTrailingSlashes(folderPrefix(of: trimmingTrailingSlashes(path)))
    while !part.isEmpty, part != "/" {
      if entryType(part) != nil { return part }
      part = trimmingTrailingSlashes(folderPrefix(of: part))
    }
    return nil
  }

  /// `owner/name[@revision]` with the Hub's characters, or nil.
  static func parse(_ argument: String) -> (owner: String, name: String, revision: String)? {
    let (id, revision) = argument.split(separator: "@", maxSplits: 1).map(String.init).splitFirst
    let parts = id.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    func valid(_ part: String, slashes: Bool = false) -> Bool {
      !part.isEmpty && part.count <= 96 && !part.hasPrefix(".") && !part.contains("..")
        && part.allSatisfy {
          $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0) || (slashes && $0 == "/"))
        }
    }
    guard parts.count == 2, valid(parts[0]), valid(parts[1]), valid(revision ?? "main", slashes: true) else {
      return nil
    }
    return (parts[0], parts[1], revision ?? "main")
  }
}

private extension Array where Element == String {
  /// The first element and the second, if any.
  var splitFirst: (String, String?) { (first ?? "", count > 1 ? self[1] : nil) }
}

private extension String {
  func trimmingCharacters(in set: String) -> String {
    var text = Substring(self)
    while let first = text.first, set.contains(first) { text = text.dropFirst() }
    while let last = text.last, set.contains(last) { text = text.dropLast() }
    return String(text)
  }
}
