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
// An increment (SaveTableIncrement) is the same frame ("MTPSINC\0"): header with its
// checkpoint id, its base checkpoint id, then the table spec as above; each record is a
// tag byte, then a row as above (1) or a removed key u64 (2), per shard the removed keys
// before the changed rows. It holds the rows made or changed and the keys removed since
// the table was last written (whole or incremental; EmbeddingTable's change tracking), so
// a restore loads the whole file and applies each increment in order (LoadTableChain).
// Rows removed since (eviction, expiry) are removed again, so they do not come back.
// Dense blocks are small: every checkpoint writes them whole (SaveDenseCheckpoint).
//
// Loading reads and checks the whole file into fresh tables before anything is swapped
// in: a bad magic, an unknown version, a header of another table spec (dim, optimizer
// type, state layout, precision, seed, initializer), a checksum mismatch, or a file that ends early
// is an error (DATA_LOSS, VERSION_MISMATCH or FAILED_PRECONDITION) naming the path and,
// for a bad block, its number and byte offset; the serving tables stay as they were.
// Sketch counts (admission) and counters are not saved. An increment is checked whole
// (every block, every record's size, its ids against the manifest's) before it is applied.
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
#include "base/checkpoint_chain.h"
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

// Sharded tables of a server. Saving (whole or increment) restarts each shard's change
// tracking, so the next increment holds what changed after this file.
StatusOr<CheckpointFileInfo> SaveTableCheckpoint(FileSystem& fs, const std::string& path,
                                                 ShardedTables& tables, uint32_t table_id);
// Only the changes since the table was last saved, as checkpoint `checkpoint_id`'s file
// over the same file of checkpoint `base_id` (returned in the info's base_id). The caller
// must know that the last save was that checkpoint's. FAILED_PRECONDITION (nothing
// written, nothing forgotten) when a shard does not know its changes: write a whole one.
StatusOr<CheckpointFileInfo> SaveTableIncrement(FileSystem& fs, const std::string& path,
                                                ShardedTables& tables, uint32_t table_id,
                                                uint64_t checkpoint_id, uint64_t base_id);
Status LoadTableCheckpoint(FileSystem& fs, const std::string& path,
                           ShardedTables& tables, uint32_t table_id);

// Plain tables (one file from any number of parts that share one spec). Loading routes
// every row to ShardOfKey(key, num_shards); the spec must match the file's.
StatusOr<CheckpointFileInfo> SaveTableParts(FileSystem& fs, const std::string& path,
                                            const std::vector<const EmbeddingTable*>& parts);
StatusOr<std::vector<std::unique_ptr<EmbeddingTable>>> LoadTableParts(
    FileSystem& fs, const std::string& path, const TableSpec& spec, int num_shards);
// Applies the increment at `path`, listed in checkpoint `checkpoint_id` over `base_id`, to
// `parts` (every row routed by ShardOfKey(key, parts.size())). A damaged file, or one
// written for another checkpoint or base, is DATA_LOSS and leaves `parts` unchanged.
Status ApplyTableIncrement(FileSystem& fs, const std::string& path, uint64_t checkpoint_id,
                           uint64_t base_id, std::vector<std::unique_ptr<EmbeddingTable>>& parts);
// The table as of the last file of `chain` (ResolveCheckpointChain): the whole file, then
// each increment in order. The files are not checked against their manifests here.
StatusOr<std::vector<std::unique_ptr<EmbeddingTable>>> LoadTableChain(
    FileSystem& fs, const std::vector<ChainFile>& chain, const TableSpec& spec, int num_shards);

StatusOr<CheckpointFileInfo> SaveDenseCheckpoint(FileSystem& fs, const std::string& path,
                                                 const DenseBlockStore& store);
Status LoadDenseCheckpoint(FileSystem& fs, const std::string& path,
                           DenseBlockStore& store);

}  // namespace mtps::ps
