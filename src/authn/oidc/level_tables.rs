//! Checks every block of a LevelDB directory's tables (`*.ldb`, `*.sst`) against its
//! CRC-32C before the directory is read: rusty-leveldb's iterator skips a block that
//! fails its checksum without a word, which would drop users' records silently. Format:
//! LevelDB's `doc/table_format.md` (footer of two block handles and a magic number; each
//! block followed by a type byte and a masked CRC-32C of block and type).
use std::path::Path;

const FOOTER_LEN: usize = 48;
const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const TRAILER_LEN: usize = 5;
const SNAPPY: u8 = 1;

/// The first damage found in `dir`'s tables, as "<file>: <what>".
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !path.extension().is_some_and(|x| x == "ldb" || x == "sst") {
            continue;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(&path).map_err(|e| format!("{name}: {e}"))?;
        check_table(&bytes).map_err(|e| format!("table {name}: {e}"))?;
    }
    Ok(())
}

fn check_table(table: &[u8]) -> Result<(), String> {
    let footer = table.len().checked_sub(FOOTER_LEN).map(|at| &table[at..]).ok_or("shorter than its footer")?;
    let magic = u64::from_le_bytes(footer[FOOTER_LEN - 8..].try_into().map_err(|_| "bad footer")?);
    if magic != MAGIC {
        return Err("no LevelDB table magic number".into());
    }
    let mut at = 0;
    let _metaindex = (varint(footer, &mut at)?, varint(footer, &mut at)?);
    let index = (varint(footer, &mut at)?, varint(footer, &mut at)?);
    let index = block(table, index)?;
    for handle in index_values(&index)? {
        let mut at = 0;
        block(table, (varint(handle, &mut at)?, varint(handle, &mut at)?))?;
    }
    Ok(())
}

/// The block at `(offset, size)`, checksum verified and decompressed.
fn block(table: &[u8], (offset, size): (u64, u64)) -> Result<Vec<u8>, String> {
    let start = usize::try_from(offset).map_err(|_| "block offset out of range")?;
    let end = usize::try_from(size).ok().and_then(|s| start.checked_add(s)).ok_or("block size out of range")?;
    let trailer = table.get(end..end + TRAILER_LEN).ok_or(format!("block at {offset} runs past the end"))?;
    let data = &table[start..end];
    let stored = u32::from_le_bytes([trailer[1], trailer[2], trailer[3], trailer[4]]);
    let crc = crc32c::crc32c_append(crc32c::crc32c(data), &trailer[..1]);
    if unmask(stored) != crc {
        return Err(format!("block at offset {offset} fails its checksum"));
    }
    match trailer[0] {
        0 => Ok(data.to_vec()),
        SNAPPY => snap::raw::Decoder::new().decompress_vec(data).map_err(|e| format!("block at {offset}: {e}")),
        other => Err(format!("block at {offset} has unknown compression {other}")),
    }
}

fn unmask(masked: u32) -> u32 {
    let rot = masked.wrapping_sub(0xa282_ead8);
    rot.rotate_left(15)
}

/// The values (block handles) of an index block's entries.
fn index_values(block: &[u8]) -> Result<Vec<&[u8]>, String> {
    let count_at = block.len().checked_sub(4).ok_or("index block too short")?;
    let restarts = u32::from_le_bytes(block[count_at..].try_into().map_err(|_| "index block too short")?) as usize;
    let entries_end =
        restarts.checked_mul(4).and_then(|r| count_at.checked_sub(r)).ok_or("index block restart array too large")?;
    let (mut at, mut values) = (0, Vec::new());
    while at < entries_end {
        let _shared = varint(block, &mut at)?;
        let unshared = varint(block, &mut at)? as usize;
        let value_len = varint(block, &mut at)? as usize;
        let value_at = at.checked_add(unshared).ok_or("index entry out of range")?;
        let value = value_at.checked_add(value_len).and_then(|end| block.get(value_at..end));
        values.push(value.ok_or("index entry runs past the block")?);
        at = value_at + value_len;
    }
    Ok(values)
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("truncated varint")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_byte_in_any_block_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let mut opt = rusty_leveldb::Options { compressor: SNAPPY, ..Default::default() };
            opt.block_size = 256;
            let mut db = rusty_leveldb::DB::open(&path, opt).unwrap();
            for i in 0..200 {
                db.put(format!("t:user{i}").as_bytes(), &[b'x'; 64]).unwrap();
            }
            db.compact_range(b"a", b"z").unwrap();
        }
        check_dir(&path).unwrap();
        let table = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "ldb"))
            .unwrap();
        let good = std::fs::read(&table).unwrap();
        for at in [10, good.len() / 2, good.len() - FOOTER_LEN - 10] {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&table, &bad).unwrap();
            let e = check_dir(&path).unwrap_err();
            assert!(e.starts_with("table ") && e.contains(".ldb: "), "{at}: {e}");
        }
    }
}
