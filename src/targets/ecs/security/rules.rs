//! Ingress rules in a form that compares: one rule per (permission, source) pair, whatever way
//! EC2 grouped them.

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, SecurityGroup, UserIdGroupPair,
};

use crate::targets::ecs::Id;

/// One ingress rule with one source, in a form that compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    protocol: String,
    from: i32,
    to: i32,
    source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Cidr(String),
    Cidr6(String),
    Group(Id),
    PrefixList(String),
}

impl Rule {
    pub fn tcp(port: u16, source: Source) -> Rule {
        Rule {
            protocol: "tcp".into(),
            from: port.into(),
            to: port.into(),
            source,
        }
    }

    /// The rule as EC2 takes it; a group source must exist by then.
    pub fn to_permission(&self) -> anyhow::Result<IpPermission> {
        let b = IpPermission::builder()
            .ip_protocol(&self.protocol)
            .from_port(self.from)
            .to_port(self.to);
        Ok(match &self.source {
            Source::Cidr(c) => b.ip_ranges(IpRange::builder().cidr_ip(c).build()),
            Source::Cidr6(c) => b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).build()),
            Source::Group(g) => b.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(g.applied("security group")?)
                    .build(),
            ),
            Source::PrefixList(p) => {
                b.prefix_list_ids(PrefixListId::builder().prefix_list_id(p).build())
            }
        }
        .build())
    }

    pub fn describe(&self) -> String {
        let port = if self.from == self.to {
            format!("{}/{}", self.protocol, self.from)
        } else {
            format!("{}/{}-{}", self.protocol, self.from, self.to)
        };
        let source = match &self.source {
            Source::Cidr(c) | Source::Cidr6(c) => c.clone(),
            Source::Group(g) => g.to_string(),
            Source::PrefixList(p) => p.clone(),
        };
        format!("{port} from {source}")
    }
}

impl Rule {
    pub fn is_world_open(&self) -> bool {
        matches!(&self.source, Source::Cidr(c) | Source::Cidr6(c) if c == "0.0.0.0/0" || c == "::/0")
    }
}

/// Every (permission, source) pair of a group, one rule each.
pub fn rules_of(group: &SecurityGroup) -> Vec<Rule> {
    let mut rules = Vec::new();
    for p in group.ip_permissions() {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let mut push = |source| {
            rules.push(Rule {
                protocol: protocol.clone(),
                from,
                to,
                source,
            })
        };
        p.ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip())
            .for_each(|c| push(Source::Cidr(c.into())));
        p.ipv6_ranges()
            .iter()
            .filter_map(|r| r.cidr_ipv6())
            .for_each(|c| push(Source::Cidr6(c.into())));
        p.user_id_group_pairs()
            .iter()
            .filter_map(|g| g.group_id())
            .for_each(|g| push(Source::Group(Id::Known(g.into()))));
        p.prefix_list_ids()
            .iter()
            .filter_map(|l| l.prefix_list_id())
            .for_each(|l| push(Source::PrefixList(l.into())));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_with_several_sources_becomes_one_rule_each() {
        let group = SecurityGroup::builder()
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(8080)
                    .to_port(8080)
                    .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                    .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-1").build())
                    .build(),
            )
            .build();
        let rules = rules_of(&group);
        assert_eq!(rules.len(), 2);
        assert!(rules.contains(&Rule::tcp(8080, Source::Group(Id::Known("sg-1".into())))));
        assert_eq!(rules[0].describe(), "tcp/8080 from 0.0.0.0/0");
    }
}
