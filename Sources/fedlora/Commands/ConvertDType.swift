import ArgumentParser
import Checkpoints

/// What `convert --dtype` accepts: a float dtype, or Q8_0 for GGUF weights.
enum ConvertDType: String, ExpressibleByArgument, CaseIterable {
  case f32, f16, bf16, q8_0

  var dtype: DType { OutputDType(rawValue: rawValue)?.dtype ?? .q8_0 }

  /// The dtype of float adapter factors; nil for q8_0 (adapters are not quantised).
  var floatType: DType? { OutputDType(rawValue: rawValue)?.dtype }
}

/// The float dtypes an output may be written in.
enum OutputDType: String, ExpressibleByArgument, CaseIterable {
  case f32, f16, bf16

  var dtype: DType {
    switch self {
    case .f32: .f32
    case .f16: .f16
    case .bf16: .bf16
    }
  }
}
