//! Receptive fields: which input pixels a unit at a given feature-map position sees.
//!
//! Each spatial operation (conv or pool; element-wise layers such as ReLU change nothing) is a
//! kernel `k`, a stride `s` and a leading padding `p`. Walking the layers from the input with
//! the field of one output position as `size`, the distance between neighbouring positions in
//! input pixels as `stride` (the "jump") and the input coordinate of position 0's first pixel as
//! `offset`:
//!
//! ```text
//! size'   = size + (k - 1) * stride
//! offset' = offset - p * stride
//! stride' = stride * s
//! ```
//!
//! so position `i` of a layer sees input pixels `offset + i * stride ..= offset + i * stride +
//! size - 1` along each axis (partly outside the image where padding was read).

/// One spatial operation of a network, square kernels only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpatialOp {
    pub kernel: usize,
    pub stride: usize,
    /// Zeros added before the first input position (top and left).
    pub padding: usize,
}

impl SpatialOp {
    /// A convolution or pool with kernel `kernel`, stride `stride` and padding `padding`.
    pub const fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        SpatialOp {
            kernel,
            stride,
            padding,
        }
    }
}

/// The receptive field of a layer's units, along one axis (square fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceptiveField {
    /// Input pixels seen by one position.
    pub size: usize,
    /// Input pixels between neighbouring positions.
    pub stride: usize,
    /// Input coordinate of the first pixel seen by position 0 (negative: in the padding).
    pub offset: i64,
}

impl ReceptiveField {
    /// The field of the input itself: each pixel sees itself.
    pub const INPUT: ReceptiveField = ReceptiveField {
        size: 1,
        stride: 1,
        offset: 0,
    };

    /// The field after one more operation.
    pub fn then(self, op: SpatialOp) -> ReceptiveField {
        ReceptiveField {
            size: self.size + (op.kernel.saturating_sub(1)) * self.stride,
            stride: self.stride * op.stride,
            offset: self.offset - (op.padding * self.stride) as i64,
        }
    }

    /// First input coordinate seen by position `i` along an axis.
    pub fn start(&self, i: usize) -> i64 {
        self.offset + (i * self.stride) as i64
    }
}

/// The receptive field after each operation of `ops`, in order.
pub fn receptive_fields(ops: &[SpatialOp]) -> Vec<ReceptiveField> {
    ops.iter()
        .scan(ReceptiveField::INPUT, |field, &op| {
            *field = field.then(op);
            Some(*field)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_compose() {
        // Two 3×3 stride-1 convs, padded by 1, then a 2×2/2 pool: 5 pixels, then 6 with jump 2.
        let conv = SpatialOp::new(3, 1, 1);
        let pool = SpatialOp::new(2, 2, 0);
        let f = receptive_fields(&[conv, conv, pool]);
        assert_eq!(
            f[0],
            ReceptiveField {
                size: 3,
                stride: 1,
                offset: -1
            }
        );
        assert_eq!(
            f[1],
            ReceptiveField {
                size: 5,
                stride: 1,
                offset: -2
            }
        );
        assert_eq!(
            f[2],
            ReceptiveField {
                size: 6,
                stride: 2,
                offset: -2
            }
        );
        assert_eq!(f[2].start(3), 4);
        assert!(receptive_fields(&[]).is_empty());
    }
}
