// Checkpoint files of a server: one per (server, sparse table) and one for its dense
// blocks. Written to a temporary name, fsynced, renamed, directory fsynced; loaded
// bit-exactly or not at all.
//
//   auto fs = NewPosixFileSystem();
//   std::string path = TableCheckpointPath(dir, server_rank, spec.name);
//   StatusOr<CheckpointFileInfo> info = SaveTableCheckpoint(*fs, path, tables, table_id);
//   Status s = LoadTableCheckpoint(*fs, path, tables, table_id);   // swaps on success
//
// Table file layout (little-endian):
//   header  "MTPSTAB\0", u32 format version, u32 header bytes, then the spec that shapes
//           the rows: name, dim, optimizer type, state floats, values per row, seed,
//           initializer, and for fp16/bf16 tables a u32 precision (absent = fp32);
//           CRC32C of the header.
//   blocks  u32 "BLK1", u32 rows, u32 payload bytes, u32 CRC32C(payload); the payload
//           holds each row as key u64, frequency u32, last step u32, update count u32,
//           then dim weights in the table's precision (4 or 2 bytes each) and the state
//           floats: half-precision weights take half the bytes on disk too, and every
//           precision reloads bit for bit.
//   footer  u32 "END1", u32 blocks, u64 rows, u32 CRC32C of the footer fields.
// The dense file is the same frame ("MTPSDNS\0"): header with the optimizer type, then one
// block per dense block (id, name, update count, size, values, state).
//
// Loading reads and checks the whole file into fresh tables before anything is swapped
// in: a bad magic, an unknown version, a header of another table spec (dim, optimizer
// type, state layout, precision, seed, initializer), a checksum mismatch, or a file that ends early
// is an error (DATA_LOSS, VERSION_MISMATCH or FAILED_PRECONDITION) naming the path and,
// for a bad block, its number and byte offset; the serving tables stay as they were.
// Sketch counts (admission) and counters are not saved.
//
// Thread-safety: these functions may be called from any thread other than a shard thread
// of `tables`; concurrent requests keep being served (each shard pauses while its rows
// are written or swapped).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol/job_spec.h"
#include "base/checkpoint_manifest.h"
#include "base/status.h"
#include "base/file_system.h"
#include "ps/dense_block.h"
#include "ps/embedding_table.h"
#include "ps/sharded_table.h"

namespace mtps::ps {

inline constexpr uint32_t kCheckpointFormatVersion = 1;

// What the scheduler's manifest records about a written file (mtps.capnp CheckpointFile).
// "<dir>/server-<rank>.table-<name>.ckpt" and "<dir>/server-<rank>.dense.ckpt".
std::string TableCheckpointPath(const std::string& dir, int server_rank,
                                const std::string& table_name);
std::string DenseCheckpointPath(const std::string& dir, int server_rank);

// Sharded tables of a server.
StatusOr<CheckpointFileInfo> SaveTableCheckpoint(FileSystem& fs, const std::string& path,
                                                 ShardedTables& tables, uint32_t table_id);
Status LoadTableCheckpoint(FileSystem& fs, const std::string& path,
                           ShardedTables& tables, uint32_t table_id);

// Plain tables (one file from any number of parts that share one spec). Loading routes
// every row to ShardOfKey(key, num_shards); the spec must match the file's.
StatusOr<CheckpointFileInfo> SaveTableParts(FileSystem& fs, const std::string& path,
                                            const std::vector<const EmbeddingTable*>& parts);
StatusOr<std::vector<std::unique_ptr<EmbeddingTable>>> LoadTableParts(
    FileSystem& fs, const std::string& path, const TableSpec& spec, int num_shards);

StatusOr<CheckpointFileInfo> SaveDenseCheckpoint(FileSystem& fs, const std::string& path,
                                                 const DenseBlockStore& store);
Status LoadDenseCheckpoint(FileSystem& fs, const std::string& path,
                           DenseBlockStore& store);

}  // namespace mtps::ps
