//! The probe on the real VGG-16 from the model cache: each top patch holds everything its
//! activation depends on, and the probe agrees with a direct forward pass.

use likeness_nn::device::cpu;
use likeness_nn::image::Image;
use likeness_nn::nets::vgg::Vgg;
use likeness_nn::weights::WeightMap;
use likeness_probe::{ProbeConfig, ProbeNet, Prober, UnitSelection, VggProbeNet, fit_longer_side};
use likeness_testdata::cache_file;

#[test]
fn real_vgg16_hits_depend_only_on_their_patch() {
    let weights = WeightMap::load(&cache_file("models/vgg16.safetensors")).unwrap();
    let device = cpu();
    let net = VggProbeNet::new(Vgg::load(&weights, &device).unwrap(), device);
    let image = Image::open(&cache_file("samples/astronaut.png")).unwrap();
    let image = fit_longer_side(&image, 112);
    let layer = "relu4_1".to_string();
    let field = net.receptive_field(&layer).unwrap();
    assert_eq!((field.size, field.stride), (60, 8));
    let config = ProbeConfig {
        layers: vec![layer.clone()],
        units: UnitSelection::Ids(vec![0, 100, 511]),
        top: 2,
        distinct: true,
    };
    let mut prober = Prober::new(&net, &config).unwrap();
    prober.observe("astronaut", &image).unwrap();
    let (results, _) = prober.finish();
    let direct = &net
        .activations(&image, std::slice::from_ref(&layer))
        .unwrap()[0];
    for unit in &results[0].units {
        let channel = direct.channel(unit.unit);
        let max = channel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(unit.hits[0].value, max, "unit {}", unit.unit);
        for hit in &unit.hits {
            // Grey out everything outside the field: the activation must not move.
            let mut only_patch = image.clone();
            let (x0, y0) = (field.start(hit.x), field.start(hit.y));
            for y in 0..image.height as i64 {
                for x in 0..image.width as i64 {
                    let inside = (x0..x0 + field.size as i64).contains(&x)
                        && (y0..y0 + field.size as i64).contains(&y);
                    if !inside {
                        let i = ((y * image.width as i64 + x) * 3) as usize;
                        only_patch.pixels[i..i + 3].fill(128);
                    }
                }
            }
            let map = &net
                .activations(&only_patch, std::slice::from_ref(&layer))
                .unwrap()[0];
            let again = map.channel(unit.unit)[hit.y * map.width + hit.x];
            assert!(
                (again - hit.value).abs() <= 1e-3 * hit.value.abs().max(1.0),
                "unit {} at ({}, {}): {} became {again}",
                unit.unit,
                hit.x,
                hit.y,
                hit.value
            );
        }
    }
}
