//! The probe on dlib's real face ResNet from the model cache: over a few cached samples resized
//! to its 150×150 input, each unit's best hit is the maximum of its layer's map.

use likeness_nn::device::cpu;
use likeness_nn::image::Image;
use likeness_nn::nets::dlib_resnet::{CHIP_SIZE, DlibResNet};
use likeness_nn::weights::WeightMap;
use likeness_probe::{DlibProbeNet, ProbeConfig, ProbeNet, Prober, UnitSelection};
use likeness_testdata::cache_file;

#[test]
fn real_dlib_top_hits_are_the_maxima_of_their_maps() {
    let weights = WeightMap::load(&cache_file("models/dlib_resnet.safetensors")).unwrap();
    let device = cpu();
    let net = DlibProbeNet::new(DlibResNet::load(&weights, &device).unwrap(), device);
    let side = CHIP_SIZE as u32;
    let images: Vec<(String, Image)> = ["Tom_Hanks_54745.png", "t1.jpg", "astronaut.png"]
        .iter()
        .map(|name| {
            let image = Image::open(&cache_file(&format!("samples/{name}"))).unwrap();
            (name.to_string(), image.resize(side, side))
        })
        .collect();

    assert_eq!(net.layers().len(), 16);
    assert_eq!(net.channels("stem").unwrap(), 32);
    assert_eq!(net.channels("block3").unwrap(), 64);
    assert_eq!(net.channels("block13").unwrap(), 256);
    assert!(net.channels("block14").is_err());
    assert!(net.channels("relu1_1").is_err());
    assert_eq!(net.receptive_field("block6").unwrap().size, 179);
    let small = images[0].1.resize(100, 100);
    assert!(net.activations(&small, &["pool".to_string()]).is_err());

    let layers: Vec<String> = ["stem", "pool", "block2", "block6"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // The map sizes dlib's unpadded stride-2 stem, pool and first stage-2 conv give.
    let maps = net.activations(&images[0].1, &layers).unwrap();
    let sizes: Vec<_> = maps.iter().map(|m| (m.channels, m.height)).collect();
    assert_eq!(sizes, vec![(32, 72), (32, 35), (32, 35), (64, 17)]);

    let config = ProbeConfig {
        layers: layers.clone(),
        units: UnitSelection::Ids(vec![0, 7, 31]),
        top: 3,
        distinct: true,
    };
    let mut prober = Prober::new(&net, &config).unwrap();
    for (name, image) in &images {
        prober.observe(name, image).unwrap();
    }
    let (results, names) = prober.finish();
    assert_eq!(names.len(), images.len());
    for (l, result) in results.iter().enumerate() {
        for unit in &result.units {
            // The best over all images is the largest activation any image gives that unit.
            let mut best = f32::NEG_INFINITY;
            for (_, image) in &images {
                let map = &net.activations(image, &layers).unwrap()[l];
                best = map.channel(unit.unit).iter().copied().fold(best, f32::max);
            }
            assert_eq!(
                unit.hits[0].value, best,
                "{} unit {}",
                result.layer, unit.unit
            );
            let field = result.field;
            assert_eq!(
                (unit.hits[0].patch.width, unit.hits[0].patch.height),
                (field.size as u32, field.size as u32)
            );
        }
    }
}
