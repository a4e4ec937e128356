//! BlazeFace inference on plain `f32` buffers, for [`super::BlazeFace::forward`].
//!
//! Why: through burn-flex a 128² pass took 7–8.6 ms (onnxruntime: 1.2 ms). Timing its op groups
//! showed the depthwise 3×3 convolutions (grouped convolutions: an im2col per channel) at ~40% of
//! the time, the 5×5 stem ~20%, the shortcut max pools 10–20%, the pointwise convolutions 12–20%
//! and the separate add and ReLU passes ~13%.
//!
//! Here a feature map is `[C][H·W]` per image, kept before its ReLU: each reader applies the
//! ReLU on the way in. A block goes by bands of output rows: the band's input rows are copied
//! (through the ReLU) into zero-bordered rows, a direct 3×3 kernel makes its depthwise output,
//! bias plus shortcut (max-pooled, zero channels appended) are written into the band's output
//! rows, and one `gemm` accumulates the pointwise product onto them, all while the band is in
//! cache. Large blocks' bands run in parallel. The stem is an im2col over the input's four
//! stride-2 phases plus one `gemm` per band; the heads are one `gemm` each, written straight in
//! the anchor order. Buffers are pooled across passes.
//!
//! This crate builds at opt-level 1, where LLVM does not vectorise loops, so the inner loops are
//! written with AVX2/FMA intrinsics (chosen at run time) beside plain scalar versions, which are
//! the fallback elsewhere and are tested against burn's ops too.

use std::sync::Mutex;

use rayon::prelude::*;

use super::{DEPTHWISE_KERNEL, REGRESSION_VALUES, STEM_KERNEL, STEM_PADDING};

/// Taps of a depthwise kernel.
pub(super) const DW_TAPS: usize = DEPTHWISE_KERNEL * DEPTHWISE_KERNEL;
/// Output rows of the stem per im2col band: its columns (75 × 16 × 128 floats for the back
/// model, 600 KiB) stay in L2 while `gemm` reads them.
const STEM_BAND_ROWS: usize = 16;

/// Floats of depthwise output per band of a block (64 KiB): with its rows of the output it stays
/// in L2 between the depthwise pass and the product.
const BAND_FLOATS: usize = 16 * 1024;

/// Input floats from which a block's bands run in parallel (inside rayon's pool): the smaller
/// maps (32² and less) make at most four bands, too little work to share.
const PARALLEL_FLOATS: usize = 64 * 1024;

/// Stem output floats from which a pass called from outside rayon's pool moves into it (one
/// thread hand-off per pass, where each split block would cost one): measured on two threads,
/// the back model (stem output 128²·24) went from 6.2 to 5.0 ms that way, the front one
/// (64²·24) from 1.0 to 1.2 ms, so it stays on the caller's thread, unsplit.
const POOL_HANDOFF_FLOATS: usize = 256 * 1024;

/// Which instructions the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl Isa {
    /// The best this CPU supports.
    pub(super) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx2Fma;
        }
        Isa::Scalar
    }
}

/// A 1×1 convolution: `weight` is `[out][in]` (OIHW with H = W = 1).
#[derive(Debug, Clone)]
pub(super) struct Pointwise {
    pub out_channels: usize,
    pub in_channels: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// One BlazeBlock's weights.
#[derive(Debug, Clone)]
pub(super) struct Block {
    /// One 3×3 kernel per channel, row-major.
    pub depthwise: Vec<[f32; DW_TAPS]>,
    pub pointwise: Pointwise,
    pub stride: usize,
    pub residual: bool,
}

/// An SSD head: scores and regressions for `anchors` anchors per cell.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub classifier: Pointwise,
    pub regressor: Pointwise,
    pub anchors: usize,
}

/// The whole network, weights copied out of the burn modules.
#[derive(Debug)]
pub(super) struct Net {
    /// Input side in pixels.
    pub size: usize,
    /// `[24][3·5·5]` (OIHW).
    pub stem: Pointwise,
    pub blocks: Vec<Block>,
    pub fine_block: usize,
    pub heads: [Head; 2],
    pub isa: Isa,
    /// Buffers of finished passes, for the next ones: fresh megabyte-sized buffers cost page
    /// faults and zeroing on every pass (10% of a front pass when measured).
    pub workspaces: Mutex<Vec<Workspace>>,
    /// Band tasks' buffers, likewise.
    pub scratches: Mutex<Vec<Scratch>>,
}

/// A feature map of one image: `[channels][height·width]`.
#[derive(Debug, Default)]
struct Map {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl Map {
    fn plane_len(&self) -> usize {
        self.height * self.width
    }

    fn plane(&self, c: usize) -> &[f32] {
        let n = self.plane_len();
        &self.data[c * n..(c + 1) * n]
    }

    /// `dst` becomes this map after ReLU.
    fn relu_to(&self, dst: &mut Map, isa: Isa) {
        dst.reuse(self.channels, self.height, self.width);
        relu_into(&self.data, &mut dst.data, isa);
    }

    /// Reshapes to `channels × height × width`, keeping the allocation; the values are stale.
    fn reuse(&mut self, channels: usize, height: usize, width: usize) {
        self.channels = channels;
        self.height = height;
        self.width = width;
        self.data.resize(channels * height * width, 0.0);
    }
}

/// Buffers reused from block to block and from pass to pass.
#[derive(Debug, Default)]
pub(super) struct Workspace {
    /// The current map and the next one.
    x: Map,
    y: Map,
    /// The map the fine head reads.
    fine: Map,
    /// The stem's input phases and im2col columns.
    phases: Vec<f32>,
    columns: Vec<f32>,
}

/// A band task's buffers.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// The depthwise output of one band of rows, `[C][rows·W]`.
    depthwise: Vec<f32>,
    /// The input rows one channel of a band reads, after ReLU, with a zero border.
    padded: Vec<f32>,
    /// Stride-1 rows before a stride-2 block keeps their odd columns.
    row: Vec<f32>,
    /// The even columns it drops.
    even: Vec<f32>,
}

impl Net {
    /// Anchors per image.
    pub(super) fn anchors(&self) -> usize {
        self.heads
            .iter()
            .zip(self.head_grids())
            .map(|(h, g)| g * g * h.anchors)
            .sum()
    }

    /// Whether a pass is worth a move into rayon's pool (see [`POOL_HANDOFF_FLOATS`]).
    fn worth_pool_handoff(&self) -> bool {
        let stem = self.stem.out_channels * (self.size / 2) * (self.size / 2);
        stem >= POOL_HANDOFF_FLOATS
    }

    /// Cells per side of the maps the heads read.
    fn head_grids(&self) -> [usize; 2] {
        // The stem halves the input, and each stride-2 block halves it again.
        let mut side = self.size / 2;
        let mut fine = side;
        for (i, b) in self.blocks.iter().enumerate() {
            side /= b.stride;
            if i == self.fine_block {
                fine = side;
            }
        }
        [fine, side]
    }

    /// Runs `batch` images, `input` NCHW `[batch][3][size][size]`; returns the scores
    /// `[batch][anchors]` and the regressions `[batch][anchors][16]`.
    pub(super) fn forward(&self, input: &[f32], batch: usize) -> (Vec<f32>, Vec<f32>) {
        let per_image = 3 * self.size * self.size;
        assert_eq!(input.len(), batch * per_image, "BlazeFace input size");
        let anchors = self.anchors();
        let mut scores = vec![0.0; batch * anchors];
        let mut boxes = vec![0.0; batch * anchors * REGRESSION_VALUES];
        for (i, image) in input.chunks_exact(per_image).enumerate() {
            let scores = &mut scores[i * anchors..(i + 1) * anchors];
            let boxes =
                &mut boxes[i * anchors * REGRESSION_VALUES..(i + 1) * anchors * REGRESSION_VALUES];
            if self.worth_pool_handoff()
                && rayon::current_thread_index().is_none()
                && rayon::current_num_threads() > 1
            {
                // Called from outside rayon's pool: move the whole pass into it once, rather
                // than each split block (a thread hand-off each).
                rayon::scope(|_| self.forward_image(image, scores, boxes));
            } else {
                self.forward_image(image, scores, boxes);
            }
        }
        (scores, boxes)
    }

    fn forward_image(&self, image: &[f32], scores: &mut [f32], boxes: &mut [f32]) {
        let mut ws = self
            .workspaces
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default();
        self.run(image, &mut ws, scores, boxes);
        // A poisoned pool only loses the reuse.
        if let Ok(mut pool) = self.workspaces.lock() {
            pool.push(ws);
        }
    }

    fn run(&self, image: &[f32], ws: &mut Workspace, scores: &mut [f32], boxes: &mut [f32]) {
        // Maps hold values before their ReLU: each reader applies it on the way in (the
        // padded rows, the shortcut, the heads), which saves a pass over every map.
        self.stem(image, ws);
        let Workspace { x, y, fine, .. } = ws;
        let mut has_fine = false;
        for (i, block) in self.blocks.iter().enumerate() {
            block_forward(block, x, y, &self.scratches, self.isa);
            std::mem::swap(x, y);
            if i == self.fine_block {
                x.relu_to(fine, self.isa);
                has_fine = true;
            }
        }
        if !has_fine {
            x.relu_to(fine, self.isa);
        }
        relu(&mut x.data, self.isa);
        let mut row = 0;
        for (head, map) in self.heads.iter().zip([&*fine, &*x]) {
            let rows = map.plane_len() * head.anchors;
            pointwise_nhwc(&head.classifier, map, &mut scores[row..row + rows]);
            pointwise_nhwc(
                &head.regressor,
                map,
                &mut boxes[row * REGRESSION_VALUES..(row + rows) * REGRESSION_VALUES],
            );
            row += rows;
        }
    }

    /// The 5×5 stride-2 stem with TF SAME padding (before its ReLU).
    fn stem(&self, image: &[f32], ws: &mut Workspace) {
        let s = self.size;
        let half = s / 2;
        let channels = image.len() / (s * s);
        // The four stride-2 phases of each input channel, `[c][row parity][col parity][half²]`:
        // a stride-2 tap then reads a contiguous, shifted row of one phase.
        let phases = &mut ws.phases;
        phases.resize(channels * 4 * half * half, 0.0);
        for c in 0..channels {
            for r in 0..s {
                let src = &image[(c * s + r) * s..(c * s + r + 1) * s];
                let base = ((c * 2 + r % 2) * 2) * half * half + (r / 2) * half;
                let (even, odd) = phases.split_at_mut(base + half * half);
                deinterleave(
                    src,
                    &mut even[base..base + half],
                    &mut odd[..half],
                    self.isa,
                );
            }
        }
        let taps = channels * STEM_KERNEL * STEM_KERNEL;
        let out_channels = self.stem.out_channels;
        let out = &mut ws.x;
        out.reuse(out_channels, half, half);
        let plane = half * half;
        let cols = &mut ws.columns;
        cols.resize(taps * STEM_BAND_ROWS * half, 0.0);
        let [pad_top, pad_left, _, _] = STEM_PADDING;
        for y0 in (0..half).step_by(STEM_BAND_ROWS) {
            let rows = STEM_BAND_ROWS.min(half - y0);
            let n = rows * half;
            for c in 0..channels {
                for ky in 0..STEM_KERNEL {
                    // Input row 2y + ky − pad_top = 2(y + dy) + parity.
                    let d = ky as isize - pad_top as isize;
                    let (dy, py) = (d.div_euclid(2), d.rem_euclid(2) as usize);
                    for kx in 0..STEM_KERNEL {
                        let d = kx as isize - pad_left as isize;
                        let (dx, px) = (d.div_euclid(2), d.rem_euclid(2) as usize);
                        let tap = (c * STEM_KERNEL + ky) * STEM_KERNEL + kx;
                        let phase = &phases[((c * 2 + py) * 2 + px) * plane..][..plane];
                        // Output columns whose source column lies inside the phase.
                        let x0 = (-dx).max(0) as usize;
                        let x1 = (half as isize - dx).min(half as isize) as usize;
                        for r in 0..rows {
                            let dst = &mut cols[tap * n + r * half..][..half];
                            let yy = (y0 + r) as isize + dy;
                            if yy < 0 || yy >= half as isize {
                                fill(dst, 0.0, self.isa);
                                continue;
                            }
                            let src = &phase[yy as usize * half..][..half];
                            dst[..x0].fill(0.0);
                            dst[x1..].fill(0.0);
                            let s0 = (x0 as isize + dx) as usize;
                            dst[x0..x1].copy_from_slice(&src[s0..s0 + (x1 - x0)]);
                        }
                    }
                }
            }
            let dst = &mut out.data[y0 * half..];
            for o in 0..out_channels {
                fill(
                    &mut dst[o * plane..o * plane + n],
                    self.stem.bias[o],
                    self.isa,
                );
            }
            // SAFETY: dst is `out_channels` rows of `n` floats with row stride `plane` starting
            // at `y0·half` of `out.data` (the last row ends at (out_channels−1)·plane + y0·half +
            // n ≤ out_channels·plane); lhs is the [out_channels × taps] weight, rhs the
            // [taps × n] columns; none overlap.
            unsafe {
                accumulate(
                    [out_channels, n, taps],
                    (dst.as_mut_ptr(), plane as isize),
                    (self.stem.weight.as_ptr(), 1, taps as isize),
                    (cols.as_ptr(), 1, n as isize),
                );
            }
        }
    }
}

/// Depthwise 3×3 (TF SAME), pointwise 1×1 with bias, shortcut (max-pooled on stride 2, zero
/// channels appended) into `y`, before the final ReLU; `x` is read through a ReLU.
///
/// The work goes by bands of output rows, so that a band's depthwise output and its rows of
/// `y` stay in cache between the depthwise pass, the shortcut and the product; the bands run in
/// parallel.
fn block_forward(block: &Block, x: &Map, y: &mut Map, pool: &Mutex<Vec<Scratch>>, isa: Isa) {
    let (ho, wo) = (x.height / block.stride, x.width / block.stride);
    y.reuse(block.pointwise.out_channels, ho, wo);
    let band = (BAND_FLOATS / (x.channels * wo)).clamp(1, ho);
    let out = BandOutput::new(&mut y.data);
    let bands = ho.div_ceil(band);
    let run = |lease: &mut Lease, b: usize| {
        let rows = b * band..((b + 1) * band).min(ho);
        block_band(block, x, &out, rows, &mut lease.scratch, isa);
    };
    let big = x.channels * x.height * x.width >= PARALLEL_FLOATS;
    // Outside the pool each split would be a thread hand-off; see `POOL_HANDOFF_FLOATS`.
    let in_pool = rayon::current_thread_index().is_some();
    if big && bands > 1 && in_pool && rayon::current_num_threads() > 1 {
        (0..bands)
            .into_par_iter()
            .for_each_init(|| Lease::take(pool), run);
    } else {
        let mut lease = Lease::take(pool);
        (0..bands).for_each(|b| run(&mut lease, b));
    }
}

/// A band task's scratch, taken from a pool and given back when the task's job ends: fresh
/// buffers would be zeroed for every band.
struct Lease<'a> {
    pool: &'a Mutex<Vec<Scratch>>,
    scratch: Scratch,
}

impl<'a> Lease<'a> {
    fn take(pool: &'a Mutex<Vec<Scratch>>) -> Lease<'a> {
        let scratch = pool
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default();
        Lease { pool, scratch }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // A poisoned pool only loses the reuse.
        if let Ok(mut p) = self.pool.lock() {
            p.push(std::mem::take(&mut self.scratch));
        }
    }
}

/// An output map written by parallel band tasks, each to its own rows of every channel.
struct BandOutput {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: the tasks sharing it write disjoint rows of one allocation, borrowed mutably for as
// long as they run (`BandOutput::new` takes `&mut`, and the tasks end before it is released).
unsafe impl Send for BandOutput {}
// SAFETY: as for Send.
unsafe impl Sync for BandOutput {}

impl BandOutput {
    fn new(data: &mut [f32]) -> BandOutput {
        BandOutput {
            ptr: data.as_mut_ptr(),
            len: data.len(),
        }
    }

    /// `len` floats from `start`, for the one task that owns them.
    ///
    /// # Safety
    /// No other task or reference touches them while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn range(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.len, "band output range");
        // SAFETY: inside the allocation (checked above); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// One band of output rows of [`block_forward`].
fn block_band(
    block: &Block,
    x: &Map,
    y: &BandOutput,
    rows: std::ops::Range<usize>,
    scratch: &mut Scratch,
    isa: Isa,
) {
    let pw = &block.pointwise;
    let (h, w) = (x.height, x.width);
    let s2 = block.stride == 2;
    let (ho, wo) = (h / block.stride, w / block.stride);
    let plane = ho * wo;
    let (i0, i1) = (rows.start, rows.end);
    let n = (i1 - i0) * wo;
    // Rows with a zero border of 1: a stride-1 SAME 3×3 needs no edge cases over them. A
    // stride-2 block's SAME padding (nothing before, one after) gives, at output (i, j), the
    // stride-1 result at (2i+1, 2j+1): the odd rows and columns of the same computation.
    let pw_ = w + 2;
    // Padded row p holds input row p − 1; output row i reads padded rows from
    // first(i) = i (stride 1) or 2i + 1 (stride 2), three of them.
    let first = |i: usize| if s2 { 2 * i + 1 } else { i };
    let (p0, p1) = (first(i0), first(i1 - 1) + 3);
    let Scratch {
        depthwise: d,
        padded,
        row,
        even,
    } = scratch;
    d.resize(x.channels * n, 0.0);
    padded.resize((p1 - p0) * pw_, 0.0);
    row.resize(2 * n, 0.0);
    even.resize(n, 0.0);
    for c in 0..x.channels {
        let src = x.plane(c);
        for p in p0..p1 {
            let r = (p - p0) * pw_;
            // The border columns, which an earlier (wider) use of the buffer may have written.
            padded[r] = 0.0;
            padded[r + pw_ - 1] = 0.0;
            let dst = &mut padded[r + 1..r + 1 + w];
            if (1..=h).contains(&p) {
                relu_into(&src[(p - 1) * w..p * w], dst, isa);
            } else {
                fill(dst, 0.0, isa);
            }
        }
        let k = &block.depthwise[c];
        let out = &mut d[c * n..(c + 1) * n];
        if s2 {
            // Full-width rows, then their odd columns: with w even, those are the odd
            // elements of the rows laid end to end.
            let full = &mut row[..2 * n];
            depthwise_rows(padded, pw_, 2, k, full, w, isa);
            deinterleave(full, &mut even[..n], out, isa);
        } else {
            depthwise_rows(padded, pw_, 1, k, out, w, isa);
        }
    }
    // The destination starts as bias + shortcut; the product accumulates onto it.
    for o in 0..pw.out_channels {
        // SAFETY: rows i0..i1 of channel o belong to this band alone.
        let dst = unsafe { y.range(o * plane + i0 * wo, n) };
        let b = pw.bias[o];
        if !block.residual || o >= x.channels {
            fill(dst, b, isa);
        } else if s2 {
            let src = x.plane(o);
            for i in i0..i1 {
                max_pool_row(
                    &src[2 * i * w..(2 * i + 1) * w],
                    &src[(2 * i + 1) * w..(2 * i + 2) * w],
                    b,
                    &mut dst[(i - i0) * wo..(i - i0 + 1) * wo],
                    isa,
                );
            }
        } else {
            relu_add(&x.plane(o)[i0 * wo..][..n], b, dst, isa);
        }
    }
    assert!(
        y.len >= (pw.out_channels - 1) * plane + i0 * wo + n,
        "block output size"
    );
    // SAFETY: dst is out_channels rows of n floats, row stride `plane`, from i0·wo: this band's
    // rows, inside the output (checked above) and written by no other task; lhs is the
    // [out × in] weights, rhs the band's depthwise output as [in × n]; distinct allocations.
    unsafe {
        accumulate(
            [pw.out_channels, n, pw.in_channels],
            (y.ptr.add(i0 * wo), plane as isize),
            (pw.weight.as_ptr(), 1, pw.in_channels as isize),
            (d.as_ptr(), 1, n as isize),
        );
    }
}

/// `dst += lhs · rhs` for an `[m × k]` by `[k × n]` product, single-threaded (the callers
/// split the work themselves). Each matrix is a pointer with its column stride and (but for
/// `dst`, whose rows are `dst_row_stride` apart and columns contiguous) its row stride, in floats.
///
/// # Safety
/// Every element the strides address lies inside its allocation, and `dst` overlaps neither
/// operand.
unsafe fn accumulate(
    [m, n, k]: [usize; 3],
    (dst, dst_row_stride): (*mut f32, isize),
    (lhs, lhs_col_stride, lhs_row_stride): (*const f32, isize, isize),
    (rhs, rhs_col_stride, rhs_row_stride): (*const f32, isize, isize),
) {
    // SAFETY: the caller's contract; alpha = 1 with read_dst adds onto dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_row_stride,
            true,
            lhs,
            lhs_col_stride,
            lhs_row_stride,
            rhs,
            rhs_col_stride,
            rhs_row_stride,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// A 1×1 convolution with bias written cell-major (`[H·W][out]`, the NHWC order the TensorFlow
/// heads reshape).
fn pointwise_nhwc(pw: &Pointwise, x: &Map, dst: &mut [f32]) {
    let cells = x.plane_len();
    assert_eq!(dst.len(), cells * pw.out_channels, "head output size");
    assert_eq!(x.channels, pw.in_channels, "head input channels");
    for cell in dst.chunks_exact_mut(pw.out_channels) {
        cell.copy_from_slice(&pw.bias);
    }
    // SAFETY: dst is [cells × out] row-major; lhs is x.data read as [cells × in] (row stride 1,
    // column stride `cells`), rhs the weights read as [in × out] (row stride 1, column stride
    // `in`); dst is borrowed mutably, so it overlaps neither.
    unsafe {
        accumulate(
            [cells, pw.out_channels, pw.in_channels],
            (dst.as_mut_ptr(), pw.out_channels as isize),
            (x.data.as_ptr(), cells as isize, 1),
            (pw.weight.as_ptr(), pw.in_channels as isize, 1),
        );
    }
}

/// Rows of a depthwise 3×3 over zero-bordered rows of `pitch` floats: output row `r`
/// (`width` floats of `out`) is `Σ_{dy,dx} k[3·dy + dx] · padded[(r·step + dy)·pitch + j + dx]`.
fn depthwise_rows(
    padded: &[f32],
    pitch: usize,
    step: usize,
    k: &[f32; DW_TAPS],
    out: &mut [f32],
    width: usize,
    isa: Isa,
) {
    let rows = out.len() / width;
    assert!(
        out.len() == rows * width
            && pitch >= width + 2
            && (rows == 0 || padded.len() >= ((rows - 1) * step + 2) * pitch + width + 2),
        "depthwise_rows sizes"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 and FMA were detected; the sizes are checked above.
        Isa::Avx2Fma => unsafe { avx::depthwise_rows(padded, pitch, step, k, out, width) },
        Isa::Scalar => {
            for (r, out_row) in out.chunks_exact_mut(width).enumerate() {
                let top = r * step * pitch;
                for (j, o) in out_row.iter_mut().enumerate() {
                    let mut acc = 0.0;
                    for dy in 0..DEPTHWISE_KERNEL {
                        for dx in 0..DEPTHWISE_KERNEL {
                            let v = padded[top + dy * pitch + j + dx];
                            acc += k[dy * DEPTHWISE_KERNEL + dx] * v;
                        }
                    }
                    *o = acc;
                }
            }
        }
    }
}

/// `even[j] = src[2j]`, `odd[j] = src[2j + 1]`.
fn deinterleave(src: &[f32], even: &mut [f32], odd: &mut [f32], isa: Isa) {
    let n = even.len();
    assert!(odd.len() == n && src.len() == 2 * n, "deinterleave lengths");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 was detected; the lengths are checked above.
        Isa::Avx2Fma => unsafe { avx::deinterleave(src, even, odd) },
        Isa::Scalar => {
            for (j, pair) in src.chunks_exact(2).enumerate() {
                even[j] = pair[0];
                odd[j] = pair[1];
            }
        }
    }
}

/// `out[j] = max(a[2j], a[2j+1], b[2j], b[2j+1], 0) + bias`: a 2×2 max pool of two rows after
/// ReLU (which commutes with the max).
fn max_pool_row(a: &[f32], b: &[f32], bias: f32, out: &mut [f32], isa: Isa) {
    let n = out.len();
    assert!(a.len() >= 2 * n && b.len() >= 2 * n, "max_pool_row lengths");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 was detected; the lengths are checked above.
        Isa::Avx2Fma => unsafe { avx::max_pool_row(a, b, bias, out) },
        Isa::Scalar => {
            for (j, o) in out.iter_mut().enumerate() {
                *o = a[2 * j]
                    .max(a[2 * j + 1])
                    .max(b[2 * j].max(b[2 * j + 1]))
                    .max(0.0)
                    + bias;
            }
        }
    }
}

/// `out[j] = max(src[j], 0) + bias`.
fn relu_add(src: &[f32], bias: f32, out: &mut [f32], isa: Isa) {
    assert_eq!(src.len(), out.len(), "relu_add lengths");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 was detected; the lengths are checked above.
        Isa::Avx2Fma => unsafe { avx::relu_add(src, bias, out) },
        Isa::Scalar => {
            for (o, &s) in out.iter_mut().zip(src) {
                *o = s.max(0.0) + bias;
            }
        }
    }
}

/// `out[j] = value` (`slice::fill` is a scalar loop at opt-level 1).
fn fill(out: &mut [f32], value: f32, isa: Isa) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 was detected.
        Isa::Avx2Fma => unsafe { avx::fill(out, value) },
        Isa::Scalar => out.fill(value),
    }
}

/// `out[j] = max(src[j], 0)`.
fn relu_into(src: &[f32], out: &mut [f32], isa: Isa) {
    relu_add(src, 0.0, out, isa);
}

/// `v = max(v, 0)`.
fn relu(v: &mut [f32], isa: Isa) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 was detected.
        Isa::Avx2Fma => unsafe { avx::relu(v) },
        Isa::Scalar => {
            for x in v {
                *x = x.max(0.0);
            }
        }
    }
}

/// The AVX2/FMA versions: eight floats at a time, the scalar formula on the remainder.
#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::{DEPTHWISE_KERNEL, DW_TAPS};

    const LANES: usize = 8;

    /// An unaligned load of 8 floats. `_mm256_loadu_ps` goes through `copy_nonoverlapping`,
    /// which at this crate's opt-level 1 (with debug assertions) keeps a precondition check and
    /// a round trip through the stack per load; `vlddqu` is the same load as one instruction.
    ///
    /// # Safety
    /// Needs AVX; `p` points at 8 readable floats.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load(p: *const f32) -> __m256 {
        // SAFETY: the caller's contract.
        unsafe { _mm256_castsi256_ps(_mm256_lddqu_si256(p.cast())) }
    }

    /// An unaligned store of 8 floats, for the same reason as [`load`]: `vmaskmovps` with every
    /// lane selected is one instruction, where `_mm256_storeu_ps` is not at opt-level 1.
    ///
    /// # Safety
    /// Needs AVX; `p` points at 8 writable floats.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store(p: *mut f32, v: __m256) {
        // SAFETY: the caller's contract.
        unsafe { _mm256_maskstore_ps(p, _mm256_set1_epi32(-1), v) }
    }

    /// # Safety
    /// Needs AVX2 and FMA; the sizes as [`super::depthwise_rows`] checks them.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn depthwise_rows(
        padded: &[f32],
        pitch: usize,
        step: usize,
        k: &[f32; DW_TAPS],
        out: &mut [f32],
        width: usize,
    ) {
        let rows = out.len() / width;
        let kv: [__m256; DW_TAPS] = std::array::from_fn(|t| _mm256_set1_ps(k[t]));
        let src = padded.as_ptr();
        let dst = out.as_mut_ptr();
        let mut r = 0;
        // SAFETY: (both loops) for output row r, the rows read are r·step … r·step + 2 (+3 in
        // the paired loop, which only runs while row r + 1 exists, so it reads row
        // (r+1)·step + 2), each at columns below width + 2 ≤ pitch; the caller checked that
        // padded holds them, and out holds rows·width floats.
        unsafe {
            // Stride 1: two output rows at a time share the loads of their middle rows.
            while step == 1 && r + 2 <= rows {
                let p = src.add(r * pitch);
                let (p0, p1, p2, p3) = (p, p.add(pitch), p.add(2 * pitch), p.add(3 * pitch));
                let (d0, d1) = (dst.add(r * width), dst.add((r + 1) * width));
                let mut j = 0;
                while j + LANES <= width {
                    let a = [load(p1.add(j)), load(p1.add(j + 1)), load(p1.add(j + 2))];
                    let b = [load(p2.add(j)), load(p2.add(j + 1)), load(p2.add(j + 2))];
                    // Row r: taps 0–2 on p0, 3–5 on p1, 6–8 on p2.
                    let mut u = _mm256_mul_ps(kv[0], load(p0.add(j)));
                    u = _mm256_fmadd_ps(kv[1], load(p0.add(j + 1)), u);
                    u = _mm256_fmadd_ps(kv[2], load(p0.add(j + 2)), u);
                    // Row r + 1: taps 0–2 on p1, 3–5 on p2, 6–8 on p3.
                    let mut v = _mm256_mul_ps(kv[0], a[0]);
                    v = _mm256_fmadd_ps(kv[1], a[1], v);
                    v = _mm256_fmadd_ps(kv[2], a[2], v);
                    for t in 0..3 {
                        u = _mm256_fmadd_ps(kv[3 + t], a[t], u);
                        v = _mm256_fmadd_ps(kv[3 + t], b[t], v);
                    }
                    for t in 0..3 {
                        u = _mm256_fmadd_ps(kv[6 + t], b[t], u);
                        v = _mm256_fmadd_ps(kv[6 + t], load(p3.add(j + t)), v);
                    }
                    store(d0.add(j), u);
                    store(d1.add(j), v);
                    j += LANES;
                }
                if j < width {
                    tail(src, pitch, step, k, out, width, r, j);
                    tail(src, pitch, step, k, out, width, r + 1, j);
                }
                r += 2;
            }
            while r < rows {
                let p0 = src.add(r * step * pitch);
                let (p1, p2) = (p0.add(pitch), p0.add(2 * pitch));
                let d = dst.add(r * width);
                let mut j = 0;
                while j + LANES <= width {
                    let mut acc = _mm256_mul_ps(kv[0], load(p0.add(j)));
                    acc = _mm256_fmadd_ps(kv[1], load(p0.add(j + 1)), acc);
                    acc = _mm256_fmadd_ps(kv[2], load(p0.add(j + 2)), acc);
                    acc = _mm256_fmadd_ps(kv[3], load(p1.add(j)), acc);
                    acc = _mm256_fmadd_ps(kv[4], load(p1.add(j + 1)), acc);
                    acc = _mm256_fmadd_ps(kv[5], load(p1.add(j + 2)), acc);
                    acc = _mm256_fmadd_ps(kv[6], load(p2.add(j)), acc);
                    acc = _mm256_fmadd_ps(kv[7], load(p2.add(j + 1)), acc);
                    acc = _mm256_fmadd_ps(kv[8], load(p2.add(j + 2)), acc);
                    store(d.add(j), acc);
                    j += LANES;
                }
                if j < width {
                    tail(src, pitch, step, k, out, width, r, j);
                }
                r += 1;
            }
        }
    }

    /// Columns `from..width` of output row `r`, one at a time.
    ///
    /// # Safety
    /// As [`depthwise_rows`], for row `r`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tail(
        src: *const f32,
        pitch: usize,
        step: usize,
        k: &[f32; DW_TAPS],
        out: &mut [f32],
        width: usize,
        r: usize,
        from: usize,
    ) {
        for j in from..width {
            let mut acc = 0.0;
            for dy in 0..DEPTHWISE_KERNEL {
                for dx in 0..DEPTHWISE_KERNEL {
                    // SAFETY: the caller's contract.
                    let v = unsafe { *src.add((r * step + dy) * pitch + j + dx) };
                    acc += k[dy * DEPTHWISE_KERNEL + dx] * v;
                }
            }
            out[r * width + j] = acc;
        }
    }

    /// Sixteen consecutive floats (`lo`, `hi`) split into their even and odd elements.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn split(lo: __m256, hi: __m256) -> (__m256, __m256) {
        // Within each 128-bit lane: lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6 …
        let even = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
        let odd = _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi);
        (middle_pairs_swapped(even), middle_pairs_swapped(odd))
    }

    /// 64-bit pairs (a, b, c, d) → (a, c, b, d): lo0 lo2 hi0 hi2 lo4 lo6 hi4 hi6 → lo0 lo2 lo4
    /// lo6 hi0 hi2 hi4 hi6.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn middle_pairs_swapped(v: __m256) -> __m256 {
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
    }

    /// # Safety
    /// Needs AVX2; `src.len() == 2·even.len() == 2·odd.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn deinterleave(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
        let n = even.len();
        let (s, e, o) = (src.as_ptr(), even.as_mut_ptr(), odd.as_mut_ptr());
        let mut j = 0;
        // SAFETY: j + 8 ≤ n: reads below 2n of src, writes below n of even and odd.
        unsafe {
            while j + LANES <= n {
                let (ev, ov) = split(load(s.add(2 * j)), load(s.add(2 * j + LANES)));
                store(e.add(j), ev);
                store(o.add(j), ov);
                j += LANES;
            }
        }
        for jj in j..n {
            even[jj] = src[2 * jj];
            odd[jj] = src[2 * jj + 1];
        }
    }

    /// # Safety
    /// Needs AVX2; `a` and `b` hold at least `2·out.len()` floats.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn max_pool_row(a: &[f32], b: &[f32], bias: f32, out: &mut [f32]) {
        let n = out.len();
        let (pa, pb, dst) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
        let bv = _mm256_set1_ps(bias);
        let zero = _mm256_setzero_ps();
        let mut j = 0;
        // SAFETY: j + 8 ≤ n: reads below 2n of a and b, writes below n of out.
        unsafe {
            while j + LANES <= n {
                let lo = _mm256_max_ps(load(pa.add(2 * j)), load(pb.add(2 * j)));
                let hi = _mm256_max_ps(load(pa.add(2 * j + LANES)), load(pb.add(2 * j + LANES)));
                let (ev, ov) = split(lo, hi);
                let m = _mm256_max_ps(_mm256_max_ps(ev, ov), zero);
                store(dst.add(j), _mm256_add_ps(m, bv));
                j += LANES;
            }
        }
        for jj in j..n {
            out[jj] = a[2 * jj]
                .max(a[2 * jj + 1])
                .max(b[2 * jj].max(b[2 * jj + 1]))
                .max(0.0)
                + bias;
        }
    }

    /// # Safety
    /// Needs AVX2; `src.len() == out.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn relu_add(src: &[f32], bias: f32, out: &mut [f32]) {
        let n = out.len();
        let (s, dst) = (src.as_ptr(), out.as_mut_ptr());
        let bv = _mm256_set1_ps(bias);
        let zero = _mm256_setzero_ps();
        let mut j = 0;
        // SAFETY: j + 8 ≤ n for both slices.
        unsafe {
            while j + LANES <= n {
                let v = _mm256_max_ps(load(s.add(j)), zero);
                store(dst.add(j), _mm256_add_ps(v, bv));
                j += LANES;
            }
        }
        for jj in j..n {
            out[jj] = src[jj].max(0.0) + bias;
        }
    }

    /// # Safety
    /// Needs AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn fill(out: &mut [f32], value: f32) {
        let n = out.len();
        let p = out.as_mut_ptr();
        let v = _mm256_set1_ps(value);
        let mut j = 0;
        // SAFETY: j + 8 ≤ n.
        unsafe {
            while j + LANES <= n {
                store(p.add(j), v);
                j += LANES;
            }
        }
        for x in &mut out[j..] {
            *x = value;
        }
    }

    /// # Safety
    /// Needs AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn relu(v: &mut [f32]) {
        let n = v.len();
        let p = v.as_mut_ptr();
        let zero = _mm256_setzero_ps();
        let mut j = 0;
        // SAFETY: j + 8 ≤ n.
        unsafe {
            while j + LANES <= n {
                store(p.add(j), _mm256_max_ps(load(p.add(j)), zero));
                j += LANES;
            }
        }
        for x in &mut v[j..] {
            *x = x.max(0.0);
        }
    }
}
