//! The networks, one per file: a config, `load(&WeightMap)`, `forward`.
pub mod blazeface;
pub mod convnd;
pub mod dlib_resnet;
pub mod liveness;
pub mod vgg;
