import COpenSSL

extension MappedFile {
  /// The SHA-256 of the whole file as 64 lowercase hex digits (what `sha256sum` prints), by
  /// OpenSSL's libcrypto over the mapping, 16 MB at a time with each slice's pages released
  /// (hashing every client must not keep every client resident).
  public func sha256() throws(CheckpointError) -> String {
    guard let context = EVP_MD_CTX_new() else { throw .io(path: path, message: "cannot start a SHA-256") }
    defer { EVP_MD_CTX_free(context) }
    EVP_DigestInit_ex(context, EVP_sha256(), nil)
    let slice = 16 << 20
    var start = 0
    while start < size {
      let end = min(size, start + slice)
      try withBytes(start..<end) { bytes in _ = EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) }
      done(with: start..<end)
      start = end
    }
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    EVP_DigestFinal_ex(context, &digest, &length)
    let hex = Array("0123456789abcdef".utf8)
    return String(decoding: digest.prefix(Int(length)).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
  }
}
