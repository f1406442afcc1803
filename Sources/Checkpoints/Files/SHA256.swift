import COpenSSL
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

extension MappedFile {
  /// The SHA-256 of the whole file as 64 lowercase hex digits (what `sha256sum` prints), by OpenSSL's
  /// libcrypto.
  ///
  /// Read with `pread` into one 4 MB buffer, not through the map: a kernel copy costs less than
  /// faulting every page in and releasing it again, and no client stays resident. The file read is
  /// checked to be the one mapped.
  ///
  /// - Returns: the digest in hex.
  /// - Throws: ``CheckpointError/io(path:message:)`` for memory standing in for a file (nothing to
  ///   hash), a file that changed or shrank since it was opened, or a read error.
  /// - Complexity: O(file size) read once; memory O(4 MB).
  public func sha256() throws(CheckpointError) -> String {
    let fd = try openAgain()
    defer { close(fd) }
    guard let context = EVP_MD_CTX_new() else { throw .io(path: path, message: "cannot start a SHA-256") }
    defer { EVP_MD_CTX_free(context) }
    EVP_DigestInit_ex(context, EVP_sha256(), nil)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 64)
    defer { buffer.deallocate() }
    var offset = 0
    while offset < size {
      let count = pread(fd, buffer.baseAddress, min(buffer.count, size - offset), off_t(offset))
      guard count > 0 else {
        throw .io(path: path, message: count == 0 ? "shorter than when it was opened" : systemError())
      }
      EVP_DigestUpdate(context, buffer.baseAddress, count)
      offset += count
    }
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    EVP_DigestFinal_ex(context, &digest, &length)
    let hex = Array("0123456789abcdef".utf8)
    return String(
      decoding: digest.prefix(Int(length)).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
  }
}
