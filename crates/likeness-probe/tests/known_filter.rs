//! On images built for the purpose and a VGG-16 whose unit 0 is a known filter, the probe's top
//! patches are the ones that truly maximise the unit, and each patch shows the pixels that did it.

use likeness_nn::device::cpu;
use likeness_nn::image::Image;
use likeness_nn::nets::vgg::{
    IMAGENET_RGB_MEAN, IMAGENET_RGB_STD, Vgg, VggVariant, conv_channels, torchvision_conv_indices,
};
use likeness_nn::weights::WeightMap;
use likeness_probe::{ProbeConfig, ProbeNet, Prober, UnitSelection, VggProbeNet};

/// VGG-16 with every weight zero except a chain of centre taps carrying the red input channel
/// through unit 0 of conv1_1, conv1_2, conv2_1, conv2_2 and conv3_1: unit 0 of relu3_1 is then
/// the brightest red (normalised, if positive) in its 4×4 pooling cell. Other weights are
/// `noise`-scaled pseudo-random values in units ≥ 1, to give other units something to do.
fn chain_vgg(noise: f32) -> VggProbeNet {
    let mut weights = WeightMap::new();
    let mut seed = 12345u32;
    let mut rand = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    for (n, (i, (c_in, c_out))) in torchvision_conv_indices(VggVariant::Vgg16)
        .into_iter()
        .zip(conv_channels(VggVariant::Vgg16))
        .enumerate()
    {
        let mut w = vec![0.0; c_out * c_in * 9];
        if n < 5 {
            for o in 1..c_out {
                for v in &mut w[o * c_in * 9..(o + 1) * c_in * 9] {
                    *v = noise * rand();
                }
            }
            w[4] = 1.0; // output 0, input 0, centre tap
        }
        weights
            .insert(format!("features.{i}.weight"), vec![c_out, c_in, 3, 3], w)
            .unwrap();
        weights
            .insert(format!("features.{i}.bias"), vec![c_out], vec![0.0; c_out])
            .unwrap();
    }
    let device = cpu();
    VggProbeNet::new(Vgg::load(&weights, &device).unwrap(), device)
}

/// A 32×32 black image with red spots `(x, y, red)`.
fn spots(list: &[(u32, u32, u8)]) -> Image {
    let mut pixels = vec![0u8; 32 * 32 * 3];
    for &(x, y, red) in list {
        pixels[((y * 32 + x) * 3) as usize] = red;
    }
    Image::from_rgb(32, 32, pixels).unwrap()
}

/// relu(normalised red) of a pixel under torchvision's convention, which the weights get by
/// default.
fn excitation(red: u8) -> f32 {
    ((red as f32 / 255.0 - IMAGENET_RGB_MEAN[0]) / IMAGENET_RGB_STD[0]).max(0.0)
}

#[test]
fn top_patches_are_the_spots_that_maximise_the_unit_in_order() {
    let net = chain_vgg(0.0);
    let images = [
        spots(&[(5, 7, 160), (25, 20, 250)]),
        spots(&[(16, 16, 200)]),
        spots(&[(2, 30, 230), (30, 3, 140)]),
        spots(&[(12, 9, 180)]),
    ];
    // Every spot, strongest first: (image, x, y, red).
    let mut expected = vec![
        (0, 5, 7, 160),
        (0, 25, 20, 250),
        (1, 16, 16, 200),
        (2, 2, 30, 230),
        (2, 30, 3, 140),
        (3, 12, 9, 180),
    ];
    expected.sort_by_key(|&(_, _, _, red)| std::cmp::Reverse(red));
    for layer in ["relu1_1", "relu2_1", "relu3_1"] {
        let field = net.receptive_field(layer).unwrap();
        let config = ProbeConfig {
            layers: vec![layer.into()],
            units: UnitSelection::Ids(vec![0]),
            top: 4,
            distinct: true,
        };
        let mut prober = Prober::new(&net, &config).unwrap();
        for (i, image) in images.iter().enumerate() {
            prober.observe(&format!("image{i}"), image).unwrap();
        }
        let (results, names) = prober.finish();
        assert_eq!(names.len(), 4);
        let hits = &results[0].units[0].hits;
        assert_eq!(hits.len(), 4, "{layer}");
        for (hit, &(image, x, y, red)) in hits.iter().zip(&expected) {
            assert_eq!(hit.image, image, "{layer}");
            assert!(
                (hit.value - excitation(red)).abs() < 1e-4,
                "{layer}: {}",
                hit.value
            );
            // The position is the spot's feature cell, and the patch holds the spot where the
            // receptive field says it is.
            let cell = field.stride as u32;
            assert_eq!(
                (hit.x as u32, hit.y as u32),
                (x / cell, y / cell),
                "{layer}"
            );
            let px = (x as i64 - field.start(hit.x)) as u32;
            let py = (y as i64 - field.start(hit.y)) as u32;
            assert_eq!(hit.patch.width as usize, field.size);
            assert_eq!(hit.patch.pixel(px, py), [red, 0, 0], "{layer}");
        }
    }
}

#[test]
fn streamed_top_k_equals_the_exhaustive_top_k() {
    // Noisy weights: units ≥ 1 respond to everything. Without `distinct`, the probe's nine hits
    // must be exactly the nine largest activations over all images and positions.
    let net = chain_vgg(0.2);
    let images: Vec<Image> = (0..3u32)
        .map(|k| {
            let pixels = (0..32 * 32 * 3u32)
                .map(|i| ((i * 37 + k * 101) % 251) as u8)
                .collect();
            Image::from_rgb(32, 32, pixels).unwrap()
        })
        .collect();
    let layer = "relu2_1".to_string();
    let config = ProbeConfig {
        layers: vec![layer.clone()],
        units: UnitSelection::Ids(vec![3, 17]),
        top: 9,
        distinct: false,
    };
    let mut prober = Prober::new(&net, &config).unwrap();
    let mut all: Vec<Vec<(f32, usize)>> = vec![Vec::new(), Vec::new()];
    for (i, image) in images.iter().enumerate() {
        prober.observe("x", image).unwrap();
        let map = &net
            .activations(image, std::slice::from_ref(&layer))
            .unwrap()[0];
        for (slot, unit) in [3, 17].into_iter().enumerate() {
            all[slot].extend(map.channel(unit).iter().map(|&v| (v, i)));
        }
    }
    let (results, _) = prober.finish();
    for (slot, unit) in results[0].units.iter().enumerate() {
        let mut values: Vec<f32> = all[slot].iter().map(|p| p.0).collect();
        values.sort_by(|a, b| b.total_cmp(a));
        let got: Vec<f32> = unit.hits.iter().map(|h| h.value).collect();
        assert_eq!(got, values[..9], "unit {}", unit.unit);
        assert!(values[0] > 0.0);
    }
}

#[test]
fn bad_requests_are_errors() {
    let net = chain_vgg(0.0);
    let config = |layer: &str, units| ProbeConfig {
        layers: vec![layer.into()],
        units,
        top: 9,
        distinct: true,
    };
    assert!(Prober::new(&net, &config("relu9_1", UnitSelection::First(4))).is_err());
    assert!(Prober::new(&net, &config("fc6", UnitSelection::First(4))).is_err());
    assert!(Prober::new(&net, &config("relu1_1", UnitSelection::Ids(vec![64]))).is_err());
    assert!(Prober::new(&net, &config("relu1_1", UnitSelection::First(0))).is_err());
    assert_eq!(net.channels("relu4_1").unwrap(), 512);
}

/// `image` with every pixel outside the square `x0..x0+size`, `y0..y0+size` replaced by another
/// pattern.
pub fn scramble_outside(image: &Image, x0: i64, y0: i64, size: usize) -> Image {
    let mut out = image.clone();
    for y in 0..image.height as i64 {
        for x in 0..image.width as i64 {
            let inside = (x0..x0 + size as i64).contains(&x) && (y0..y0 + size as i64).contains(&y);
            if !inside {
                let i = ((y * image.width as i64 + x) * 3) as usize;
                for (k, v) in out.pixels[i..i + 3].iter_mut().enumerate() {
                    *v = ((x * 53 + y * 29 + k as i64 * 71) % 256) as u8;
                }
            }
        }
    }
    out
}

#[test]
fn a_hit_depends_only_on_its_receptive_field() {
    // If the field were computed too small, pixels outside it would change the activation.
    let net = chain_vgg(0.2);
    let pixels = (0..48 * 48 * 3u32)
        .map(|i| ((i * 97) % 253) as u8)
        .collect();
    let image = Image::from_rgb(48, 48, pixels).unwrap();
    for layer in ["relu1_2", "relu2_1", "relu3_1"] {
        let field = net.receptive_field(layer).unwrap();
        let config = ProbeConfig {
            layers: vec![layer.into()],
            units: UnitSelection::Ids(vec![1, 6]),
            top: 3,
            distinct: true,
        };
        let mut prober = Prober::new(&net, &config).unwrap();
        prober.observe("noise", &image).unwrap();
        let (results, _) = prober.finish();
        for unit in &results[0].units {
            assert!(
                unit.hits[0].value > 0.0,
                "{layer} unit {} is dead",
                unit.unit
            );
            for hit in &unit.hits {
                let other =
                    scramble_outside(&image, field.start(hit.x), field.start(hit.y), field.size);
                assert_ne!(other, image);
                let map = &net.activations(&other, &[layer.to_string()]).unwrap()[0];
                let again = map.channel(unit.unit)[hit.y * map.width + hit.x];
                assert!(
                    (again - hit.value).abs() <= 1e-4 * hit.value.abs().max(1.0),
                    "{layer} unit {} at ({}, {}): {} became {again}",
                    unit.unit,
                    hit.x,
                    hit.y,
                    hit.value
                );
            }
        }
    }
}
