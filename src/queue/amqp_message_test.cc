#include "queue/amqp_message.h"

#include <cstring>

#include "gtest/gtest.h"

namespace galley::queue {
namespace {

amqp_bytes_t B(const char* s) { return amqp_bytes_t{std::strlen(s), const_cast<char*>(s)}; }

amqp_field_value_t Utf8(const char* s) {
  amqp_field_value_t v{};
  v.kind = AMQP_FIELD_KIND_UTF8;
  v.value.bytes = B(s);
  return v;
}

TEST(FieldText, ScalarsBecomeTextAndTablesAreLeftOut) {
  amqp_field_value_t v{};
  v.kind = AMQP_FIELD_KIND_I64;
  v.value.i64 = -1733300000123;
  EXPECT_EQ(FieldText(v), "-1733300000123");
  v.kind = AMQP_FIELD_KIND_U8;
  v.value.u8 = 200;
  EXPECT_EQ(FieldText(v), "200");
  v.kind = AMQP_FIELD_KIND_BOOLEAN;
  v.value.boolean = 1;
  EXPECT_EQ(FieldText(v), "true");
  EXPECT_EQ(FieldText(Utf8("vader")), "vader");
  v.kind = AMQP_FIELD_KIND_TABLE;
  v.value.table = amqp_empty_table;
  EXPECT_EQ(FieldText(v), std::nullopt);
  v.kind = AMQP_FIELD_KIND_VOID;
  EXPECT_EQ(FieldText(v), std::nullopt);
}

TEST(ToDelivery, CopiesOnlyThePropertiesThatAreSet) {
  amqp_table_entry_t entries[2];
  entries[0].key = B("model");
  entries[0].value = Utf8("vader");
  entries[1].key = B("x-delivery-count");
  entries[1].value.kind = AMQP_FIELD_KIND_I64;
  entries[1].value.value.i64 = 2;
  amqp_basic_properties_t p{};
  p._flags = AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
  p.message_id = B("job-1");
  p.reply_to = B("ignored: its flag is not set");
  p.timestamp = 1733300000;
  p.headers = amqp_table_t{2, entries};
  const AmqpDelivery d = ToDelivery(p, B("{\"text\":\"hi\"}"));
  EXPECT_EQ(d.message_id, "job-1");
  EXPECT_EQ(d.reply_to, "");
  EXPECT_EQ(d.timestamp_s, 1733300000u);
  EXPECT_EQ(d.body, "{\"text\":\"hi\"}");
  ASSERT_EQ(d.headers.size(), 2u);
  EXPECT_EQ(*d.Header("model"), "vader");
  EXPECT_EQ(DeliveryNumber(d), 3);  // two earlier deliveries were returned
}

TEST(MessageId, PropertyThenHeaderThenCorrelationId) {
  AmqpDelivery d;
  d.correlation_id = "corr";
  EXPECT_EQ(MessageId(d), "corr");
  d.headers = {{"id", "hdr"}};
  EXPECT_EQ(MessageId(d), "hdr");
  d.message_id = "prop";
  EXPECT_EQ(MessageId(d), "prop");
  EXPECT_EQ(MessageId(AmqpDelivery{}), "");
}

TEST(ToEntry, MapsPropertiesAndHeadersOntoTheMessageFields) {
  AmqpDelivery d;
  d.message_id = "job-7";
  d.reply_to = "replies";
  d.body = "{}";
  d.headers = {{"model", "sentiment"},
               {"deadline_ms", "1800000000000"},
               {"reply", "other"},
               {"unrelated", "x"}};
  const StreamEntry e = ToEntry(d);
  EXPECT_EQ(e.id, "job-7");
  EXPECT_EQ(*e.Field("body"), "{}");
  EXPECT_EQ(*e.Field("id"), "job-7");
  EXPECT_EQ(*e.Field("reply"), "replies");  // the property wins over the header
  EXPECT_EQ(*e.Field("model"), "sentiment");
  EXPECT_EQ(*e.Field("deadline_ms"), "1800000000000");
  EXPECT_EQ(e.Field("unrelated"), nullptr);
  EXPECT_EQ(e.Field("traceparent"), nullptr);
  EXPECT_EQ(e.Field("enqueued_ms"), nullptr);  // no timestamp property
  d.headers.emplace_back("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  d.timestamp_s = 1'800'000'000;
  EXPECT_EQ(*ToEntry(d).Field("traceparent"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(*ToEntry(d).Field("enqueued_ms"), "1800000000000");
  d.reply_to.clear();
  EXPECT_EQ(*ToEntry(d).Field("reply"), "other");
  EXPECT_EQ(ToEntry(AmqpDelivery{}).Field("id"), nullptr);
}

TEST(DeliveryNumber, FirstDeliveryHasNoCountAndBadCountsAreIgnored) {
  AmqpDelivery d;
  EXPECT_EQ(DeliveryNumber(d), 1);
  d.headers = {{"x-delivery-count", "nonsense"}};
  EXPECT_EQ(DeliveryNumber(d), 1);
  d.headers = {{"x-delivery-count", "4"}};
  EXPECT_EQ(DeliveryNumber(d), 5);
}

TEST(DeliveryLimitFor, LimitCountsReturnsNotDeliveries) {
  EXPECT_EQ(DeliveryLimitFor(5), 4);
  EXPECT_EQ(DeliveryLimitFor(1), 0);
  EXPECT_EQ(DeliveryLimitFor(0), 0);
}

TEST(ConfirmLedger, SingleAndMultipleAcksSettleInOrder) {
  ConfirmLedger l;
  EXPECT_EQ(l.Add(10, "q", "a"), 1u);
  EXPECT_EQ(l.Add(11, "q", "b"), 2u);
  EXPECT_EQ(l.Add(12, "q", "c"), 3u);
  EXPECT_EQ(l.Add(13, "q", "d"), 4u);
  auto one = l.Settle(2, false, true);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].token, 11u);
  EXPECT_TRUE(one[0].confirmed);
  auto upto = l.Settle(3, true, false);  // a nack of 1 and 3 (2 is gone already)
  ASSERT_EQ(upto.size(), 2u);
  EXPECT_EQ(upto[0].token, 10u);
  EXPECT_EQ(upto[1].token, 12u);
  EXPECT_FALSE(upto[0].confirmed);
  EXPECT_EQ(l.outstanding(), 1u);
  EXPECT_TRUE(l.Settle(99, false, true).empty());  // unknown tag: nothing
  l.Reset();
  EXPECT_EQ(l.outstanding(), 0u);
  EXPECT_EQ(l.Add(14, "q", "e"), 1u);  // a new channel numbers from 1 again
}

TEST(ConfirmLedger, AReturnMarksTheOldestOutstandingMatch) {
  ConfirmLedger l;
  l.Add(1, "replies", "same");
  l.Add(2, "replies", "same");
  l.Add(3, "other", "same");
  EXPECT_TRUE(l.MarkReturned("replies", "same"));
  EXPECT_FALSE(l.MarkReturned("missing", "same"));
  auto s = l.Settle(3, true, true);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_TRUE(s[0].returned);
  EXPECT_FALSE(s[1].returned);
  EXPECT_FALSE(s[2].returned);
}

}  // namespace
}  // namespace galley::queue
