//! GGUF metadata values: the twelve scalar/string types and (nested) arrays.

use std::fmt;

use super::reader::Cursor;
use crate::error::{Error, Result};

/// Arrays nested deeper than this are refused: real files use depth 1, and unbounded
/// recursion on a hostile file would overflow the stack.
pub const MAX_ARRAY_DEPTH: u32 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    pub fn from_u32(v: u32) -> Option<Self> {
        use ValueType::*;
        Some(match v {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The fewest bytes one value of this type occupies in the file (used to bound counts).
    pub fn min_size(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(ValueType, Vec<MetaValue>),
}

impl MetaValue {
    pub fn read(c: &mut Cursor, ty: ValueType, key: &str, depth: u32) -> Result<MetaValue> {
        use MetaValue as V;
        Ok(match ty {
            ValueType::U8 => V::U8(c.u8(key)?),
            ValueType::I8 => V::I8(c.i8(key)?),
            ValueType::U16 => V::U16(c.u16(key)?),
            ValueType::I16 => V::I16(c.i16(key)?),
            ValueType::U32 => V::U32(c.u32(key)?),
            ValueType::I32 => V::I32(c.i32(key)?),
            ValueType::F32 => V::F32(c.f32(key)?),
            ValueType::Bool => {
                let at = c.pos();
                match c.u8(key)? {
                    0 => V::Bool(false),
                    1 => V::Bool(true),
                    b => return Err(Error::gguf(key, at, format!("bool value must be 0 or 1, found {b}"))),
                }
            }
            ValueType::String => V::String(c.string(key)?),
            ValueType::U64 => V::U64(c.u64(key)?),
            ValueType::I64 => V::I64(c.i64(key)?),
            ValueType::F64 => V::F64(c.f64(key)?),
            ValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(Error::gguf(key, c.pos(), format!("arrays nested deeper than {MAX_ARRAY_DEPTH}")));
                }
                let at = c.pos();
                let et = c.u32(key)?;
                let elem = ValueType::from_u32(et)
                    .ok_or_else(|| Error::gguf(key, at, format!("unknown array element type {et}")))?;
                let n = c.u64(key)?;
                c.check_count(n, elem.min_size(), key)?;
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(MetaValue::read(c, elem, key, depth + 1)?);
                }
                V::Array(elem, v)
            }
        })
    }

    pub fn type_name(&self) -> &'static str {
        use MetaValue::*;
        match self {
            U8(_) => "u8",
            I8(_) => "i8",
            U16(_) => "u16",
            I16(_) => "i16",
            U32(_) => "u32",
            I32(_) => "i32",
            F32(_) => "f32",
            Bool(_) => "bool",
            String(_) => "string",
            U64(_) => "u64",
            I64(_) => "i64",
            F64(_) => "f64",
            Array(..) => "array",
        }
    }

    /// Any integer type that fits, as GGUF writers are not consistent about widths.
    pub fn as_u64(&self) -> Option<u64> {
        use MetaValue::*;
        match *self {
            U8(v) => Some(v as u64),
            U16(v) => Some(v as u64),
            U32(v) => Some(v as u64),
            U64(v) => Some(v),
            I8(v) if v >= 0 => Some(v as u64),
            I16(v) if v >= 0 => Some(v as u64),
            I32(v) if v >= 0 => Some(v as u64),
            I64(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        use MetaValue::*;
        match *self {
            F32(v) => Some(v as f64),
            F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(_, v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for MetaValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MetaValue::*;
        match self {
            U8(v) => write!(f, "{v}"),
            I8(v) => write!(f, "{v}"),
            U16(v) => write!(f, "{v}"),
            I16(v) => write!(f, "{v}"),
            U32(v) => write!(f, "{v}"),
            I32(v) => write!(f, "{v}"),
            F32(v) => write!(f, "{v}"),
            Bool(v) => write!(f, "{v}"),
            String(s) => write!(f, "{s:?}"),
            U64(v) => write!(f, "{v}"),
            I64(v) => write!(f, "{v}"),
            F64(v) => write!(f, "{v}"),
            Array(t, v) => write!(f, "[{:?}; {}]", t, v.len()),
        }
    }
}
