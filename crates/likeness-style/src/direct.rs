//! J and ∂J/∂G without an autodiff graph: VGG's forward pass and its input gradient written
//! out on `gemm`, for the one computation style transfer repeats hundreds of times.
//!
//! Why: through burn's autodiff every 3×3 convolution pays an im2col copy forward and a
//! col2im scatter backward, and every step builds a fresh graph in fresh memory (bench/README.md
//! has the profile). Here a feature map lives in a zero-bordered plane, `[C][(H+2)·(W+2)]`,
//! so that a 3×3 convolution with padding 1 is nine matrix products over *shifted views* of one
//! buffer, with no copies; its input gradient is the same nine products with the weights
//! transposed and the shifts reversed. Weight gradients are never formed. The products run over
//! column tiles, one tile per task, so that a tile of the output stays in cache across the nine
//! taps. Buffers are reused from one evaluation to the next.
//!
//! The autodiff path ([`StyleObjective::evaluate_autodiff`](crate::objective::StyleObjective))
//! stays as the reference this one is tested against.

use std::sync::Mutex;

use likeness_nn::nets::vgg::{Pooling, VggVariant};
use rayon::prelude::*;

use crate::error::{Result, StyleError};
use crate::loss::{CostWeights, LossTerms, style_scale};

/// Below this many input channels a convolution gathers its nine shifted inputs into one
/// matrix per tile and multiplies once (the 3 channels of the image: nine products with an
/// inner dimension of 3 would be all overhead).
const GATHER_BELOW_CHANNELS: usize = 16;
/// A tile's output and input columns together should fit in about this many floats (1 MiB,
/// a typical L2 cache), and no tile is narrower than [`MIN_TILE`] columns.
const TILE_FLOATS: usize = 256 * 1024;
const MIN_TILE: usize = 128;

/// Float buffers kept between evaluations: style transfer evaluates the same shapes hundreds
/// of times, and fresh allocations of this size cost page faults and TLB shootdowns.
#[derive(Default)]
struct Buffers(Mutex<Vec<Vec<f32>>>);

impl Buffers {
    /// A buffer of `len` floats with unspecified (but initialised) contents.
    fn take(&self, len: usize) -> Vec<f32> {
        let mut free = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        let mut buffer = match best {
            Some(i) => free.swap_remove(i),
            None => Vec::with_capacity(len),
        };
        if buffer.len() >= len {
            buffer.truncate(len);
        } else {
            buffer.resize(len, 0.0);
        }
        buffer
    }

    fn give(&self, buffer: Vec<f32>) {
        if buffer.capacity() > 0 {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(buffer);
        }
    }
}

/// A feature map `[C, H, W]` stored with a one-pixel zero border around each channel.
struct Plane {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl Plane {
    /// A plane whose contents are unspecified: the caller writes every element.
    fn uninit(buffers: &Buffers, channels: usize, height: usize, width: usize) -> Self {
        let len = channels * (height + 2) * (width + 2);
        Plane {
            channels,
            height,
            width,
            data: buffers.take(len),
        }
    }

    fn zeros(buffers: &Buffers, channels: usize, height: usize, width: usize) -> Self {
        let mut p = Plane::uninit(buffers, channels, height, width);
        p.data.par_iter_mut().for_each(|v| *v = 0.0);
        p
    }

    /// Elements per channel, border included.
    fn stride(&self) -> usize {
        (self.height + 2) * (self.width + 2)
    }

    /// Index of the first interior element of a channel, and the length of the run from the
    /// first to the last interior element (it crosses the side borders).
    fn interior_run(&self) -> (usize, usize) {
        let row = self.width + 2;
        (row + 1, self.height * row - 2)
    }

    /// The plane of an unbordered `[C, H, W]` array.
    fn from_dense(buffers: &Buffers, c: usize, h: usize, w: usize, dense: &[f32]) -> Self {
        let mut p = Plane::zeros(buffers, c, h, w);
        let (row, stride) = (w + 2, p.stride());
        for (ch, plane) in p.data.chunks_exact_mut(stride).enumerate() {
            for y in 0..h {
                let src = &dense[(ch * h + y) * w..][..w];
                plane[(y + 1) * row + 1..][..w].copy_from_slice(src);
            }
        }
        p
    }

    /// The unbordered `[C, H, W]` array.
    fn to_dense(&self) -> Vec<f32> {
        let (row, stride) = (self.width + 2, self.stride());
        let mut out = Vec::with_capacity(self.channels * self.height * self.width);
        for plane in self.data.chunks_exact(stride) {
            for y in 0..self.height {
                out.extend_from_slice(&plane[(y + 1) * row + 1..][..self.width]);
            }
        }
        out
    }

    /// Zeroes every border element (after a product over the interior run has written the side
    /// borders, or when the buffer came uninitialised).
    fn clear_borders(&mut self) {
        let (row, h, stride) = (self.width + 2, self.height, self.stride());
        self.data.par_chunks_mut(stride).for_each(|plane| {
            plane[..row + 1].fill(0.0);
            for y in 1..h {
                plane[y * row + row - 1] = 0.0;
                plane[(y + 1) * row] = 0.0;
            }
            plane[(h + 1) * row - 1..].fill(0.0);
        });
    }
}

/// A pointer that tasks writing disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: only used by `conv_tiles`, whose tasks write disjoint column ranges.
unsafe impl Send for SharedMut {}
// SAFETY: as for Send: tasks sharing it write disjoint column ranges and never read another's.
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// A method, not the field, so that closures capture the whole (Send) wrapper.
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// One 3×3, padding-1 convolution, its weights arranged for the forward products and for the
/// input-gradient products.
pub(crate) struct Conv3x3 {
    c_in: usize,
    c_out: usize,
    bias: Vec<f32>,
    /// Nine `[C_out × C_in]` matrices, tap (kh, kw) at 3·kh + kw.
    forward: Vec<f32>,
    /// `[C_out × 9·C_in]`, column 9-major (tap · C_in + channel), for the gathered product
    /// (only below [`GATHER_BELOW_CHANNELS`] input channels).
    gathered: Option<Vec<f32>>,
    /// Nine `[C_in × C_out]` matrices: the transposes, tap (kh, kw) stored at the mirrored tap
    /// (2 − kh, 2 − kw) so that the input gradient is a convolution with the same shifts.
    backward: Vec<f32>,
}

impl Conv3x3 {
    /// From PyTorch-layout weights `[C_out, C_in, 3, 3]` and bias `[C_out]`.
    pub fn new(weight: &[f32], bias: Vec<f32>, c_in: usize, c_out: usize) -> Result<Self> {
        if weight.len() != c_out * c_in * 9 || bias.len() != c_out {
            return Err(StyleError::Data(format!(
                "conv weights of {} and bias of {} values do not make {c_out}×{c_in}×3×3",
                weight.len(),
                bias.len()
            )));
        }
        let mut forward = vec![0f32; weight.len()];
        let gather = c_in < GATHER_BELOW_CHANNELS;
        let mut gathered = vec![0f32; if gather { weight.len() } else { 0 }];
        let mut backward = vec![0f32; weight.len()];
        for co in 0..c_out {
            for ci in 0..c_in {
                for t in 0..9 {
                    let w = weight[(co * c_in + ci) * 9 + t];
                    forward[(t * c_out + co) * c_in + ci] = w;
                    if gather {
                        gathered[co * 9 * c_in + t * c_in + ci] = w;
                    }
                    backward[((8 - t) * c_in + ci) * c_out + co] = w;
                }
            }
        }
        Ok(Conv3x3 {
            c_in,
            c_out,
            bias,
            forward,
            gathered: gather.then_some(gathered),
            backward,
        })
    }

    fn forward(&self, x: &Plane, buffers: &Buffers) -> Plane {
        let mut y = Plane::uninit(buffers, self.c_out, x.height, x.width);
        conv_tiles(
            &mut y,
            x,
            &self.forward,
            self.gathered.as_deref(),
            Some(&self.bias),
        );
        y.clear_borders();
        y
    }

    /// ∂J/∂x from ∂J/∂y, whose borders must be zero. The result's borders are zero.
    fn backward_input(&self, dy: &Plane, buffers: &Buffers) -> Plane {
        let mut dx = Plane::uninit(buffers, self.c_in, dy.height, dy.width);
        conv_tiles(&mut dx, dy, &self.backward, None, None);
        dx.clear_borders();
        dx
    }
}

/// `dst[:, p] = bias + Σ_taps W_t · src[:, p + shift_t]` over the interior run of every
/// channel (the side borders inside the run get garbage). `taps` holds nine row-major
/// `[dst channels × src channels]` matrices; `gathered`, when given, the same as one
/// `[dst × 9·src]` matrix used with a gathered copy of the shifted inputs.
fn conv_tiles(
    dst: &mut Plane,
    src: &Plane,
    taps: &[f32],
    gathered: Option<&[f32]>,
    bias: Option<&[f32]>,
) {
    let (m, k) = (dst.channels, src.channels);
    let (start, run) = src.interior_run();
    let (row, stride) = (src.width + 2, src.stride());
    assert!(dst.stride() == stride && taps.len() == 9 * m * k);
    assert!(bias.is_none_or(|b| b.len() == m));
    assert!(dst.data.len() >= m * stride && src.data.len() >= k * stride);
    let shifts: [isize; 9] = std::array::from_fn(|t| {
        (t / 3) as isize * row as isize + (t % 3) as isize - row as isize - 1
    });
    // Every product stays inside both buffers: the run plus the largest shift ends at the
    // last element of a channel, and starts at its first.
    debug_assert!(start as isize + shifts[0] == 0);
    debug_assert!(start + run - 1 + (row + 1) == stride - 1);

    let threads = rayon::current_num_threads().max(1);
    let by_cache = (TILE_FLOATS / (m + k)).max(MIN_TILE);
    let by_threads = run.div_ceil(4 * threads).max(MIN_TILE);
    let tile = by_cache.min(by_threads).min(run);
    let out = SharedMut(dst.data.as_mut_ptr());
    // Shared reads need no wrapper beyond an address: `src` is borrowed for the whole call.
    let input = src.data.as_ptr() as usize;

    (0..run.div_ceil(tile)).into_par_iter().for_each(|i| {
        let (j0, cols) = (i * tile, tile.min(run - i * tile));
        // SAFETY: this task writes columns [start + j0, start + j0 + cols) of each of the m
        // channels and no other task writes them; all reads and writes lie inside the buffers
        // (asserted above).
        let dst_ptr = unsafe { out.ptr().add(start + j0) };
        let src_ptr = input as *const f32;
        let mut accumulate = false;
        if let Some(b) = bias {
            for (c, &v) in b.iter().enumerate() {
                // SAFETY: as above.
                unsafe { std::slice::from_raw_parts_mut(dst_ptr.add(c * stride), cols) }.fill(v);
            }
            accumulate = true;
        }
        match gathered {
            Some(weights) => {
                let mut cols_buf = vec![0f32; 9 * k * cols];
                for (t, shift) in shifts.iter().enumerate() {
                    for c in 0..k {
                        let from = (c * stride + start + j0) as isize + shift;
                        // SAFETY: inside the source channel c, as shown above.
                        let s = unsafe { std::slice::from_raw_parts(src_ptr.offset(from), cols) };
                        cols_buf[(t * k + c) * cols..][..cols].copy_from_slice(s);
                    }
                }
                // SAFETY: lhs `weights` is [m × 9k] row-major, rhs `cols_buf` [9k × cols].
                unsafe {
                    product(
                        dst_ptr,
                        stride,
                        accumulate,
                        weights.as_ptr(),
                        9 * k,
                        cols_buf.as_ptr(),
                        cols,
                        m,
                        cols,
                        9 * k,
                    )
                };
            }
            None => {
                for (t, shift) in shifts.iter().enumerate() {
                    let from = (start + j0) as isize + shift;
                    // SAFETY: lhs is tap t's [m × k] matrix; rhs the k source channels at the
                    // shifted columns, inside their planes as shown above.
                    unsafe {
                        product(
                            dst_ptr,
                            stride,
                            accumulate || t > 0,
                            taps.as_ptr().add(t * m * k),
                            k,
                            src_ptr.offset(from),
                            stride,
                            m,
                            cols,
                            k,
                        )
                    };
                }
            }
        }
    });
}

/// `dst (m × n, row stride dst_rs) (+)= lhs (m × k, row stride lhs_rs) · rhs (k × n, row
/// stride rhs_rs)`, all with unit column stride, on the calling thread.
///
/// # Safety
/// Every element addressed must lie in live buffers, and `dst` must not overlap the inputs
/// or be written by anyone else meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn product(
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const f32,
    lhs_rs: usize,
    rhs: *const f32,
    rhs_rs: usize,
    m: usize,
    n: usize,
    k: usize,
) {
    // SAFETY: forwarded to the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs,
            1,
            lhs_rs as isize,
            rhs,
            1,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// The Gram matrix `a·aᵀ` of a plane's channels (`[C × C]`): the borders are zero, so the
/// product over whole planes is the Gram of the interior.
fn gram(a: &Plane) -> Vec<f32> {
    let (c, stride) = (a.channels, a.stride());
    assert!(a.data.len() >= c * stride);
    let mut g = vec![0f32; c * c];
    // SAFETY: lhs is a as [c × stride]; rhs is aᵀ (row stride 1, column stride `stride`),
    // both inside `a.data`; `g` is a fresh [c × c] buffer.
    unsafe {
        gemm::gemm(
            c,
            c,
            stride,
            g.as_mut_ptr(),
            1,
            c as isize,
            false,
            a.data.as_ptr(),
            1,
            stride as isize,
            a.data.as_ptr(),
            stride as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        )
    };
    g
}

/// `grad += beta · d · a` for a `[C × C]` matrix `d` and a plane `a`.
fn add_product(grad: &mut Plane, d: &[f32], a: &Plane, beta: f32) {
    let (c, stride) = (a.channels, a.stride());
    assert!(d.len() == c * c && a.data.len() >= c * stride && grad.data.len() >= c * stride);
    // SAFETY: dst and rhs are [c × stride] inside their planes, lhs [c × c]; `grad` is
    // borrowed mutably, so it overlaps neither input.
    unsafe {
        gemm::gemm(
            c,
            stride,
            c,
            grad.data.as_mut_ptr(),
            1,
            stride as isize,
            true,
            d.as_ptr(),
            1,
            c as isize,
            a.data.as_ptr(),
            1,
            stride as isize,
            1.0,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        )
    };
}

/// The layers in VGG's order; a position counts conv, ReLU and pool alike, as
/// [`VggLayer::position`](likeness_nn::nets::vgg::VggLayer::position) does.
enum Op {
    Conv(usize),
    Relu,
    Pool,
}

/// A loss attached to the output of one position.
pub(crate) enum Tap {
    /// λ · ½‖a − target‖², target unbordered `[C, H, W]`.
    Content { weight: f64, target: Vec<f32> },
    /// λ · ‖s·(Gram(a) − target)‖², target `[C, C]`.
    Style { weight: f64, target: Vec<f32> },
}

/// A tap with its target ready for the planes.
enum Term {
    /// Target as a bordered plane's data.
    Content { weight: f64, target: Vec<f32> },
    /// Index into the style terms, target Gram.
    Style {
        weight: f64,
        index: usize,
        target: Vec<f32>,
    },
}

/// The frozen network and the losses of one transfer at one size.
pub(crate) struct DirectObjective {
    convs: Vec<Conv3x3>,
    ops: Vec<Op>,
    pooling: Pooling,
    /// (position, term), any number per position.
    terms: Vec<(usize, Term)>,
    style_terms: usize,
    weights: CostWeights,
    height: usize,
    width: usize,
    buffers: Buffers,
}

impl DirectObjective {
    /// `taps` are (position, tap) for an image of `height` × `width`.
    pub fn new(
        variant: VggVariant,
        convs: Vec<Conv3x3>,
        pooling: Pooling,
        taps: Vec<(usize, Tap)>,
        weights: CostWeights,
        height: usize,
        width: usize,
    ) -> Result<Self> {
        let mut ops = Vec::new();
        let mut conv = 0;
        for n in variant.convs_per_block() {
            for _ in 0..n {
                ops.push(Op::Conv(conv));
                ops.push(Op::Relu);
                conv += 1;
            }
            ops.push(Op::Pool);
        }
        if convs.len() != conv {
            return Err(StyleError::Config(format!(
                "{variant:?} has {conv} convolutions, got {}",
                convs.len()
            )));
        }
        // The shape at every position, to check the targets against.
        let mut shapes = Vec::with_capacity(ops.len());
        let (mut c, mut h, mut w) = (3, height, width);
        for op in &ops {
            match op {
                Op::Conv(i) => {
                    if convs[*i].c_in != c {
                        return Err(StyleError::Config(format!(
                            "conv {i} takes {} channels, gets {c}",
                            convs[*i].c_in
                        )));
                    }
                    c = convs[*i].c_out;
                }
                Op::Relu => {}
                Op::Pool => (h, w) = (h / 2, w / 2),
            }
            shapes.push((c, h, w));
        }
        let buffers = Buffers::default();
        let mut style_terms = 0;
        let mut terms = Vec::with_capacity(taps.len());
        for (pos, tap) in taps {
            let &(c, h, w) = shapes
                .get(pos)
                .ok_or_else(|| StyleError::Config(format!("no layer at position {pos}")))?;
            if h == 0 || w == 0 {
                return Err(StyleError::Config(format!(
                    "a {height}×{width} image has no pixels left at layer position {pos}"
                )));
            }
            let term = match tap {
                Tap::Content { weight, target } if target.len() == c * h * w => Term::Content {
                    weight,
                    target: Plane::from_dense(&buffers, c, h, w, &target).data,
                },
                Tap::Style { weight, target } if target.len() == c * c => {
                    style_terms += 1;
                    Term::Style {
                        weight,
                        index: style_terms - 1,
                        target,
                    }
                }
                _ => {
                    return Err(StyleError::Data(format!(
                        "a target at layer position {pos} does not fit its {c}×{h}×{w} activations"
                    )));
                }
            };
            terms.push((pos, term));
        }
        Ok(DirectObjective {
            convs,
            ops,
            pooling,
            terms,
            style_terms,
            weights,
            height,
            width,
            buffers,
        })
    }

    /// Outputs of every position up to the last one with a term, and for each max pooling
    /// which input won. A conv's output is kept only when a term reads it (its ReLU runs in
    /// place otherwise: the backward pass needs only the ReLU's output).
    fn forward(&self, image: &Plane) -> (Vec<Option<Plane>>, Vec<Option<Vec<u8>>>) {
        let last = self.terms.iter().map(|(p, _)| *p).max().unwrap_or(0);
        let mut outputs: Vec<Option<Plane>> = Vec::with_capacity(last + 1);
        let mut argmax = Vec::with_capacity(last + 1);
        for (pos, op) in self.ops.iter().enumerate().take(last + 1) {
            let (out, arg) = match op {
                Op::Conv(i) => match input_of(image, &outputs, pos) {
                    Some(x) => (self.convs[*i].forward(x, &self.buffers), None),
                    None => unreachable!("a conv always follows a kept output"),
                },
                Op::Relu => {
                    let tapped = self.terms.iter().any(|(p, _)| *p == pos - 1);
                    let mut out = match (tapped, outputs[pos - 1].take()) {
                        (false, Some(y)) => y,
                        (true, Some(y)) => {
                            let mut copy =
                                Plane::uninit(&self.buffers, y.channels, y.height, y.width);
                            copy.data.copy_from_slice(&y.data);
                            outputs[pos - 1] = Some(y);
                            copy
                        }
                        (_, None) => unreachable!("a ReLU always follows a conv"),
                    };
                    out.data.par_iter_mut().for_each(|v| *v = v.max(0.0));
                    (out, None)
                }
                Op::Pool => match input_of(image, &outputs, pos) {
                    Some(x) => pool_forward(x, self.pooling, &self.buffers),
                    None => unreachable!("a pool always follows a ReLU"),
                },
            };
            outputs.push(Some(out));
            argmax.push(arg);
        }
        (outputs, argmax)
    }

    /// J's terms and ∂J/∂G at the unbordered image `x` (`[3, H, W]`).
    pub fn evaluate(&self, x: &[f32]) -> Result<(LossTerms, Vec<f32>)> {
        let (h, w) = (self.height, self.width);
        if x.len() != 3 * h * w {
            return Err(StyleError::Data(format!(
                "image has {} values, expected 3×{h}×{w}",
                x.len()
            )));
        }
        let image = Plane::from_dense(&self.buffers, 3, h, w, x);
        let (outputs, argmax) = self.forward(&image);

        let mut terms = LossTerms {
            style_layers: vec![0.0; self.style_terms],
            ..LossTerms::default()
        };
        let mut grad: Option<Plane> = None;
        for pos in (0..outputs.len()).rev() {
            let out = outputs[pos].as_ref();
            let mut g = match (grad.take(), out) {
                (Some(g), _) => g,
                (None, Some(o)) => Plane::zeros(&self.buffers, o.channels, o.height, o.width),
                (None, None) => unreachable!("the last position has a term, so it is kept"),
            };
            for (_, term) in self.terms.iter().filter(|(p, _)| *p == pos) {
                let Some(a) = out else {
                    unreachable!("positions with terms are kept")
                };
                match term {
                    Term::Content { weight, target } => {
                        let scale = (weight * self.weights.content) as f32;
                        terms.content += weight * content_term(a, target, &mut g, scale);
                    }
                    Term::Style {
                        weight,
                        index,
                        target,
                    } => {
                        let coef = weight * self.weights.style;
                        terms.style_layers[*index] = weight * style_term(a, target, &mut g, coef);
                    }
                }
            }
            let next = match &self.ops[pos] {
                Op::Conv(i) => self.convs[*i].backward_input(&g, &self.buffers),
                Op::Relu => {
                    let Some(y) = out else {
                        unreachable!("ReLU outputs are kept")
                    };
                    g.data
                        .par_iter_mut()
                        .zip(y.data.par_iter())
                        .for_each(|(d, &y)| {
                            if y <= 0.0 {
                                *d = 0.0;
                            }
                        });
                    grad = Some(g);
                    continue;
                }
                Op::Pool => {
                    let input = if pos == 0 {
                        Some(&image)
                    } else {
                        outputs[pos - 1].as_ref()
                    };
                    let Some(x) = input else {
                        unreachable!("a pool's input is a kept ReLU output")
                    };
                    pool_backward(&g, x, argmax[pos].as_deref(), self.pooling, &self.buffers)
                }
            };
            self.buffers.give(g.data);
            grad = Some(next);
        }
        let mut dx = match grad {
            Some(g) => {
                let dense = g.to_dense();
                self.buffers.give(g.data);
                dense
            }
            None => vec![0.0; x.len()],
        };
        for plane in outputs.into_iter().flatten() {
            self.buffers.give(plane.data);
        }
        self.buffers.give(image.data);
        if self.weights.tv != 0.0 {
            terms.tv = total_variation(x, h, w, &mut dx, self.weights.tv as f32);
        }
        terms.style = terms.style_layers.iter().sum();
        terms.total = self.weights.content * terms.content
            + self.weights.style * terms.style
            + self.weights.tv * terms.tv;
        Ok((terms, dx))
    }
}

/// The input of position `pos`: the image, or the previous position's kept output.
fn input_of<'a>(image: &'a Plane, outputs: &'a [Option<Plane>], pos: usize) -> Option<&'a Plane> {
    match pos {
        0 => Some(image),
        _ => outputs[pos - 1].as_ref(),
    }
}

/// ½‖a − target‖² (before its weights); adds `scale`·(a − target) to `grad`.
fn content_term(a: &Plane, target: &[f32], grad: &mut Plane, scale: f32) -> f64 {
    grad.data
        .par_iter_mut()
        .zip(a.data.par_iter().zip(target.par_iter()))
        .map(|(g, (&y, &t))| {
            let d = y - t;
            *g += scale * d;
            (d as f64) * (d as f64)
        })
        .sum::<f64>()
        * 0.5
}

/// ‖s·(Gram(a) − target)‖² (before its weights); adds `coef`·∂/∂a of it to `grad`.
fn style_term(a: &Plane, target: &[f32], grad: &mut Plane, coef: f64) -> f64 {
    let mut diff = gram(a);
    let s = style_scale(a.channels, a.height, a.width);
    let mut loss = 0f64;
    for (g, &t) in diff.iter_mut().zip(target) {
        let d = *g as f64 - t as f64;
        loss += (s * d) * (s * d);
        *g = d as f32;
    }
    // ∂/∂a ‖s(G − T)‖² = 2s²·((G − T) + (G − T)ᵀ)·a = 4s²·(G − T)·a, as G and T are symmetric.
    add_product(grad, &diff, a, (4.0 * s * s * coef) as f32);
    loss
}

/// 2×2, stride-2 pooling (odd last rows and columns dropped, as burn and PyTorch do).
fn pool_forward(x: &Plane, pooling: Pooling, buffers: &Buffers) -> (Plane, Option<Vec<u8>>) {
    let (h, w) = (x.height / 2, x.width / 2);
    let mut y = Plane::uninit(buffers, x.channels, h, w);
    let (irow, orow, istride, ostride) = (x.width + 2, w + 2, x.stride(), y.stride());
    let mut argmax = (pooling == Pooling::Max).then(|| vec![0u8; x.channels * h * w]);
    let work = |c: usize, out: &mut [f32], mut arg: Option<&mut [u8]>| {
        let inp = &x.data[c * istride..][..istride];
        for oy in 0..h {
            for ox in 0..w {
                let base = (2 * oy + 1) * irow + 2 * ox + 1;
                let v = [
                    inp[base],
                    inp[base + 1],
                    inp[base + irow],
                    inp[base + irow + 1],
                ];
                out[(oy + 1) * orow + ox + 1] = match pooling {
                    Pooling::Max => {
                        // The first of equal values wins, as in PyTorch.
                        let best = (1..4).fold(0, |b, k| if v[k] > v[b] { k } else { b });
                        if let Some(a) = arg.as_deref_mut() {
                            a[oy * w + ox] = best as u8;
                        }
                        v[best]
                    }
                    Pooling::Average => (v[0] + v[1] + v[2] + v[3]) * 0.25,
                };
            }
        }
    };
    match argmax.as_mut() {
        Some(a) => y
            .data
            .par_chunks_mut(ostride)
            .zip(a.par_chunks_mut(h * w))
            .enumerate()
            .for_each(|(c, (out, a))| work(c, out, Some(a))),
        None => y
            .data
            .par_chunks_mut(ostride)
            .enumerate()
            .for_each(|(c, out)| work(c, out, None)),
    }
    y.clear_borders();
    (y, argmax)
}

/// Sends each pooled gradient back to the input(s) it came from.
fn pool_backward(
    dy: &Plane,
    x: &Plane,
    argmax: Option<&[u8]>,
    pooling: Pooling,
    buffers: &Buffers,
) -> Plane {
    let mut dx = Plane::zeros(buffers, x.channels, x.height, x.width);
    let (h, w) = (dy.height, dy.width);
    let (irow, orow, istride, ostride) = (x.width + 2, w + 2, x.stride(), dy.stride());
    dx.data
        .par_chunks_mut(istride)
        .enumerate()
        .for_each(|(c, d)| {
            let g = &dy.data[c * ostride..][..ostride];
            for oy in 0..h {
                for ox in 0..w {
                    let v = g[(oy + 1) * orow + ox + 1];
                    let base = (2 * oy + 1) * irow + 2 * ox + 1;
                    let cells = [base, base + 1, base + irow, base + irow + 1];
                    match (pooling, argmax) {
                        (Pooling::Max, Some(a)) => {
                            d[cells[a[(c * h + oy) * w + ox] as usize]] += v;
                        }
                        _ => cells.iter().for_each(|&i| d[i] += 0.25 * v),
                    }
                }
            }
        });
    dx
}

/// Σ (x_{i,j+1} − x_{i,j})² + (x_{i+1,j} − x_{i,j})² over `[3, H, W]`; adds `weight`·∂/∂x.
fn total_variation(x: &[f32], h: usize, w: usize, grad: &mut [f32], weight: f32) -> f64 {
    let mut tv = 0f64;
    for c in 0..3 {
        let base = c * h * w;
        for y in 0..h {
            for xx in 0..w {
                let i = base + y * w + xx;
                for j in [(xx + 1 < w).then_some(i + 1), (y + 1 < h).then_some(i + w)]
                    .into_iter()
                    .flatten()
                {
                    let d = x[j] - x[i];
                    tv += (d as f64) * (d as f64);
                    grad[j] += 2.0 * weight * d;
                    grad[i] -= 2.0 * weight * d;
                }
            }
        }
    }
    tv
}
