//! A bounds-checked little-endian cursor over the bytes of a GGUF file.
//! Every read says which field it is for, so a truncated or hostile file
//! produces an error naming the field and the byte offset.

use crate::error::{Error, Result};

pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub fn pos(&self) -> u64 {
        self.pos as u64
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn bytes(&mut self, n: u64, field: &str) -> Result<&'a [u8]> {
        if n > self.remaining() as u64 {
            return Err(Error::gguf(
                field,
                self.pos(),
                format!("needs {n} bytes but only {} remain in the file (truncated?)", self.remaining()),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let b = self.bytes(N as u64, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub fn u8(&mut self, f: &str) -> Result<u8> {
        Ok(self.array::<1>(f)?[0])
    }
    pub fn i8(&mut self, f: &str) -> Result<i8> {
        Ok(self.array::<1>(f)?[0] as i8)
    }
    pub fn u16(&mut self, f: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(f)?))
    }
    pub fn i16(&mut self, f: &str) -> Result<i16> {
        Ok(i16::from_le_bytes(self.array(f)?))
    }
    pub fn u32(&mut self, f: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(f)?))
    }
    pub fn i32(&mut self, f: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(f)?))
    }
    pub fn u64(&mut self, f: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(f)?))
    }
    pub fn i64(&mut self, f: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(f)?))
    }
    pub fn f32(&mut self, f: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array(f)?))
    }
    pub fn f64(&mut self, f: &str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array(f)?))
    }

    /// A GGUF string: u64 length, then that many bytes of UTF-8.
    pub fn string(&mut self, field: &str) -> Result<String> {
        let at = self.pos();
        let len = self.u64(field)?;
        let b = self.bytes(len, field)?;
        String::from_utf8(b.to_vec()).map_err(|e| Error::gguf(field, at, format!("string is not valid UTF-8: {e}")))
    }

    /// Check that `count` items of at least `min_size` bytes each can still fit in the
    /// file before anything is allocated for them.
    pub fn check_count(&self, count: u64, min_size: u64, field: &str) -> Result<()> {
        let need = count.checked_mul(min_size);
        match need {
            Some(n) if n <= self.remaining() as u64 => Ok(()),
            _ => Err(Error::gguf(
                field,
                self.pos(),
                format!(
                    "count {count} needs at least {} bytes but only {} remain in the file (truncated or corrupt)",
                    need.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
                    self.remaining()
                ),
            )),
        }
    }
}
