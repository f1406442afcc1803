import COpenSSL

extension MappedFile {
  /// The SHA-256 of the whole file as 64 lowercase hex digits (what `sha256sum` prints), by
  /// OpenSSL's libcrypto over the mapping.
  public func sha256() throws(CheckpointError) -> String {
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    try withBytes(0..<size) { bytes in
      _ = EVP_Digest(bytes.baseAddress, bytes.count, &digest, &length, EVP_sha256(), nil)
    }
    let hex = Array("0123456789abcdef".utf8)
    return String(decoding: digest.prefix(Int(length)).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
  }
}
