// Tests of Membership: ranks, retries, spec-hash refusal, full clusters, the view.
#include "scheduler/membership.h"

#include <capnp/message.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mtps::scheduler {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kHash = 0xabcdef0123456789ull;

NodeRecord Node(proto::Role role, const std::string& address, uint64_t hash = kHash, int rank = -1) {
  NodeRecord node;
  node.role = role;
  node.address = address;
  node.http_address = address + "-http";
  node.spec_hash = hash;
  node.requested_rank = rank;
  return node;
}

TEST(MembershipTest, RanksAreDistinctPerRoleAndTheClusterCompletes) {
  Membership m(2, 3, kHash);
  EXPECT_EQ(*m.Register(Node(proto::Role::SERVER, "tcp://s0")), 0);
  EXPECT_EQ(*m.Register(Node(proto::Role::WORKER, "tcp://w0")), 0);
  EXPECT_EQ(*m.Register(Node(proto::Role::WORKER, "tcp://w1")), 1);
  EXPECT_EQ(*m.Register(Node(proto::Role::SERVER, "tcp://s1")), 1);
  EXPECT_FALSE(m.complete());
  EXPECT_EQ(m.CountSummary(), "2 of 2 servers and 2 of 3 workers registered");
  EXPECT_EQ(*m.Register(Node(proto::Role::WORKER, "tcp://w2")), 2);
  EXPECT_TRUE(m.complete());
  EXPECT_EQ(m.epoch(), 5u);
}

TEST(MembershipTest, ARetriedRegistrationGetsTheSameRank) {
  Membership m(1, 2, kHash);
  EXPECT_EQ(*m.Register(Node(proto::Role::WORKER, "tcp://w0")), 0);
  EXPECT_EQ(*m.Register(Node(proto::Role::WORKER, "tcp://w0")), 0);
  EXPECT_EQ(*m.Register(Node(proto::Role::WORKER, "tcp://w1")), 1);
}

TEST(MembershipTest, AnotherSpecHashIsRefusedNamingOnlyTheNodesHash) {
  Membership m(1, 1, kHash);
  StatusOr<int> rank = m.Register(Node(proto::Role::WORKER, "tcp://w0", 0x1111));
  ASSERT_FALSE(rank.ok());
  EXPECT_EQ(rank.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(rank.status().message(),
              AllOf(HasSubstr("worker at tcp://w0"), HasSubstr("0x0000000000001111"),
                    Not(HasSubstr("0xabcdef0123456789")), HasSubstr("same job spec")));
  EXPECT_EQ(m.CountSummary(), "0 of 1 servers and 0 of 1 workers registered");
}

TEST(MembershipTest, RequestedRanksAreHonouredOrRefused) {
  Membership m(3, 1, kHash);
  EXPECT_EQ(*m.Register(Node(proto::Role::SERVER, "tcp://s2", kHash, 2)), 2);
  StatusOr<int> taken = m.Register(Node(proto::Role::SERVER, "tcp://other", kHash, 2));
  EXPECT_EQ(taken.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(taken.status().message(), HasSubstr("held by server 2 (tcp://s2)"));
  StatusOr<int> out_of_range = m.Register(Node(proto::Role::SERVER, "tcp://x", kHash, 3));
  EXPECT_EQ(out_of_range.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("rank 3 but the job has 3 servers"));
  EXPECT_EQ(*m.Register(Node(proto::Role::SERVER, "tcp://s0")), 0);  // first free
}

TEST(MembershipTest, AFullRoleAndOtherRolesAreRefused) {
  Membership m(1, 1, kHash);
  ASSERT_TRUE(m.Register(Node(proto::Role::SERVER, "tcp://s0")).ok());
  StatusOr<int> extra = m.Register(Node(proto::Role::SERVER, "tcp://s9"));
  EXPECT_EQ(extra.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(extra.status().message(), HasSubstr("all 1 server ranks are taken (by tcp://s0)"));
  EXPECT_EQ(m.Register(Node(proto::Role::CLIENT, "tcp://c")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(m.Register(Node(proto::Role::WORKER, "")).status().code(), StatusCode::kInvalidArgument);
}

TEST(MembershipTest, ViewListsNodesByRank) {
  Membership m(2, 1, kHash);
  ASSERT_TRUE(m.Register(Node(proto::Role::SERVER, "tcp://s1", kHash, 1)).ok());
  ASSERT_TRUE(m.Register(Node(proto::Role::SERVER, "tcp://s0")).ok());
  ASSERT_TRUE(m.Register(Node(proto::Role::WORKER, "tcp://w0")).ok());
  capnp::MallocMessageBuilder message;
  auto view = message.initRoot<proto::ClusterView>();
  m.FillView(view);
  EXPECT_EQ(view.getSpecHash(), kHash);
  EXPECT_EQ(view.getEpoch(), 3u);
  EXPECT_EQ(view.getPartition(), proto::Partition::JUMP_HASH);
  ASSERT_EQ(view.getServers().size(), 2u);
  EXPECT_EQ(view.getServers()[0].getAddress(), "tcp://s0");
  EXPECT_EQ(view.getServers()[1].getAddress(), "tcp://s1");
  EXPECT_EQ(view.getServers()[1].getRank(), 1);
  EXPECT_EQ(view.getServers()[1].getHttpAddress(), "tcp://s1-http");
  ASSERT_EQ(view.getWorkers().size(), 1u);
  EXPECT_EQ(view.getWorkers()[0].getAddress(), "tcp://w0");
}

}  // namespace
}  // namespace mtps::scheduler
