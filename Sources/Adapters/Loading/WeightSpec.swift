import Checkpoints

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// How client weights are given.
public enum WeightSpec: Sendable, Equatable {
  case uniform
  case weights([Double])
  case samples([Double])
}
