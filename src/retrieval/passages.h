// The document set of a retrieval index: passages of text, each with the source it came from.
// `galley index build` collects them from Markdown files (split at headings and paragraphs) or
// from a JSON Lines file, and stores them beside the index as passages.jsonl.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace galley::retrieval {

struct Passage {
  std::string text;
  std::string source;  // e.g. "docs/queues.md#redis-streams", or what the JSONL line names
};

// GitHub's heading anchor: lowercased, characters other than letters, digits, spaces, '-' and
// '_' dropped, spaces to '-'. "Redis Streams (v7)" -> "redis-streams-v7".
std::string HeadingAnchor(std::string_view heading);

// Splits one Markdown document into passages: a passage never crosses a heading, holds whole
// paragraphs (a list or table counts as one paragraph) up to about `max_words` words, and a
// longer paragraph is cut at word boundaries. Fenced code blocks and HTML comments are left
// out. Each passage starts with its heading, so that it reads well alone; its source is
// `label#anchor` (just `label` before the first heading).
std::vector<Passage> SplitMarkdown(std::string_view label, std::string_view markdown,
                                   size_t max_words);

// Collects passages from `path`: a .jsonl file (one {"text": ..., "source": ...} object per
// line; "source" optional, default FILE:LINE), a Markdown file, or a folder whose *.md files
// (recursively, sorted by path) are split with SplitMarkdown and labelled with their path
// relative to `label_root` (or to the folder). Errors: NotFound for a missing path;
// InvalidArgument naming the file and line for a bad JSONL line, an empty text or a file that
// is not UTF-8; InvalidArgument when nothing is found.
absl::StatusOr<std::vector<Passage>> CollectPassages(const std::filesystem::path& path,
                                                     size_t max_words,
                                                     const std::filesystem::path& label_root = {});

// passages.jsonl: one {"text", "source"} object per line, in id order.
absl::Status WritePassages(const std::filesystem::path& file, const std::vector<Passage>& passages);
absl::StatusOr<std::vector<Passage>> ReadPassages(const std::filesystem::path& file);

}  // namespace galley::retrieval
