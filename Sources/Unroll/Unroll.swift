// One import for users: `import Unroll` brings tensors and autodiff, layers, data handling, model files and
// training. Each module can still be imported on its own.
@_exported import Datasets
@_exported import Graph
@_exported import Layers
@_exported import Serialization
@_exported import Train
