//! The streaming probe: images in, per unit the top-k activations and their input patches out.

use likeness_nn::image::Image;

use crate::error::{ProbeError, Result};
use crate::field::ReceptiveField;
use crate::net::ProbeNet;
use crate::topk::{Hit, TopK, peaks};

/// Grey for the parts of a patch that lie outside the image (where the network read padding).
pub const OUTSIDE_GREY: u8 = 128;

/// Which units of each layer to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitSelection {
    /// Units `0..n` (fewer if the layer has fewer).
    First(usize),
    /// These units, in this order.
    Ids(Vec<usize>),
}

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Layer names as the network spells them (`relu3_1`).
    pub layers: Vec<String>,
    pub units: UnitSelection,
    /// Hits kept per unit.
    pub top: usize,
    /// Take at most one hit per image from positions closer than half a receptive field, so
    /// that a unit's patches are not near-copies of one another.
    pub distinct: bool,
}

/// A probed unit and its hits, strongest first.
#[derive(Debug, Clone)]
pub struct UnitResult {
    pub unit: usize,
    pub hits: Vec<Hit>,
}

/// The result for one layer.
#[derive(Debug, Clone)]
pub struct LayerResult {
    pub layer: String,
    pub field: ReceptiveField,
    pub units: Vec<UnitResult>,
}

struct LayerState {
    name: String,
    field: ReceptiveField,
    units: Vec<usize>,
    tops: Vec<TopK>,
}

/// Streams images through a network and keeps each chosen unit's strongest activations.
pub struct Prober<'a, N: ProbeNet> {
    net: &'a N,
    top: usize,
    distinct: bool,
    layers: Vec<LayerState>,
    names: Vec<String>,
}

impl<'a, N: ProbeNet> Prober<'a, N> {
    /// Checks `config` against the network.
    pub fn new(net: &'a N, config: &ProbeConfig) -> Result<Self> {
        if config.layers.is_empty() {
            return Err(ProbeError::Invalid("no layers to probe".into()));
        }
        if config.top == 0 {
            return Err(ProbeError::Invalid("top must be at least 1".into()));
        }
        let layers = config
            .layers
            .iter()
            .map(|name| {
                let channels = net.channels(name)?;
                let units = match &config.units {
                    UnitSelection::First(n) => (0..(*n).min(channels)).collect::<Vec<_>>(),
                    UnitSelection::Ids(ids) => {
                        if let Some(&unit) = ids.iter().find(|&&u| u >= channels) {
                            return Err(ProbeError::NoSuchUnit {
                                layer: name.clone(),
                                unit,
                                channels,
                            });
                        }
                        ids.clone()
                    }
                };
                if units.is_empty() {
                    return Err(ProbeError::Invalid(format!("no units chosen in {name}")));
                }
                Ok(LayerState {
                    name: name.clone(),
                    field: net.receptive_field(name)?,
                    tops: vec![TopK::new(config.top); units.len()],
                    units,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Prober {
            net,
            top: config.top,
            distinct: config.distinct,
            layers,
            names: Vec::new(),
        })
    }

    /// Runs one image (as it is: resize it first if wanted) and updates every unit's top list.
    /// `name` labels the image in the results.
    pub fn observe(&mut self, name: &str, image: &Image) -> Result<()> {
        let index = self.names.len();
        let names: Vec<String> = self.layers.iter().map(|l| l.name.clone()).collect();
        let maps = self.net.activations(image, &names)?;
        for (state, map) in self.layers.iter_mut().zip(&maps) {
            let radius = if self.distinct {
                state.field.size.div_ceil(2 * state.field.stride).max(1)
            } else {
                0
            };
            for (&unit, top) in state.units.iter().zip(state.tops.iter_mut()) {
                let channel = map.channel(unit);
                let found = peaks(
                    channel,
                    map.height,
                    map.width,
                    self.top,
                    radius,
                    top.threshold(),
                );
                for (value, y, x) in found {
                    top.insert(Hit {
                        value,
                        image: index,
                        y,
                        x,
                        patch: crop_field(image, state.field, y, x),
                    });
                }
            }
        }
        self.names.push(name.to_string());
        Ok(())
    }

    /// Names of the images seen, by index.
    pub fn image_names(&self) -> &[String] {
        &self.names
    }

    /// The results, one per layer in the order asked, and the image names by index.
    pub fn finish(self) -> (Vec<LayerResult>, Vec<String>) {
        let layers = self
            .layers
            .into_iter()
            .map(|s| LayerResult {
                layer: s.name,
                field: s.field,
                units: s
                    .units
                    .into_iter()
                    .zip(s.tops)
                    .map(|(unit, top)| UnitResult {
                        unit,
                        hits: top.into_hits(),
                    })
                    .collect(),
            })
            .collect();
        (layers, self.names)
    }
}

/// The input pixels that feature position (`y`, `x`) sees through `field`: a `size × size`
/// image, [`OUTSIDE_GREY`] where the field reaches past the image.
pub fn crop_field(image: &Image, field: ReceptiveField, y: usize, x: usize) -> Image {
    let size = field.size;
    let (x0, y0) = (field.start(x), field.start(y));
    let mut pixels = vec![OUTSIDE_GREY; size * size * 3];
    for dy in 0..size {
        let sy = y0 + dy as i64;
        if sy < 0 || sy >= image.height as i64 {
            continue;
        }
        for dx in 0..size {
            let sx = x0 + dx as i64;
            if sx < 0 || sx >= image.width as i64 {
                continue;
            }
            let px = image.pixel(sx as u32, sy as u32);
            let o = (dy * size + dx) * 3;
            pixels[o..o + 3].copy_from_slice(&px);
        }
    }
    Image {
        width: size as u32,
        height: size as u32,
        pixels,
    }
}

/// `image` scaled so that its longer side is `side` pixels (unchanged if it already is).
pub fn fit_longer_side(image: &Image, side: u32) -> Image {
    let longer = image.width.max(image.height);
    if longer == side || side == 0 {
        return image.clone();
    }
    let scale = side as f64 / longer as f64;
    let w = ((image.width as f64 * scale).round() as u32).max(1);
    let h = ((image.height as f64 * scale).round() as u32).max(1);
    image.resize(w, h)
}

/// The PNG and JPEG files directly in `dir`, sorted by name.
pub fn list_images(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| ProbeError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| ProbeError::io(dir, e))?.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if path.is_file() && matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg")) {
            out.push(path);
        }
    }
    if out.is_empty() {
        return Err(ProbeError::NoImages(dir.to_path_buf()));
    }
    out.sort();
    Ok(out)
}
