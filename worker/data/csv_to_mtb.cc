// ConvertCsvToMtb: CsvReader windows appended to an MtbWriter.
#include "worker/data/csv_to_mtb.h"

#include "worker/data/csv_reader.h"

namespace mtps {

StatusOr<ConvertReport> ConvertCsvToMtb(const std::string& csv_path, const FeatureMap& map,
                                        DataSpec::BadRecordPolicy policy, const std::string& mtb_path,
                                        int64_t row_group_rows, char delimiter) {
  MTPS_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::Open(csv_path, map, policy, delimiter));
  MTPS_ASSIGN_OR_RETURN(std::unique_ptr<MtbWriter> writer, MtbWriter::Create(mtb_path, MtbSchema::Of(map), row_group_rows));
  ColumnBlock block(map.num_tasks(), map.num_dense(), map.num_sparse());
  ColumnView view;
  ConvertReport report;
  while (true) {
    block.Clear();
    MTPS_ASSIGN_OR_RETURN(int64_t n, reader->Read(row_group_rows, &block));
    if (n == 0) break;
    ColumnView::Assign(block, &view);
    MTPS_RETURN_IF_ERROR(writer->Append(view));
    report.rows += n;
  }
  MTPS_RETURN_IF_ERROR(writer->Close());
  report.bad_records = reader->bad_records();
  report.first_bad_record = reader->first_bad_record();
  return report;
}

}  // namespace mtps
