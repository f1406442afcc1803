/// How client weights are given.
public enum WeightSpec: Sendable, Equatable {
  case uniform
  case weights([Double])
  case samples([Double])
}
