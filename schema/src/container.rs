//! The fields the shipper adds to a line read from a container's log file: what the
//! container runtime's record and kubelet's log directory say about it.

use crate::field;

/// One field the shipper adds to a container's line when it knows its value (a line of a
/// plain file has none of them; a file outside kubelet's layout has no `kubernetes.*`).
/// Like [`Enriched`](crate::Enriched), a field the line already carries is left as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerField {
    /// `stream`: `stdout` or `stderr`, from the runtime's record.
    Stream,
    /// `kubernetes.namespace`.
    KubernetesNamespace,
    /// `kubernetes.pod.name`.
    KubernetesPodName,
    /// `kubernetes.pod.uid`.
    KubernetesPodUid,
    /// `kubernetes.container.name`.
    KubernetesContainerName,
    /// `container.id`.
    ContainerId,
}

impl ContainerField {
    /// Every container field, in the order the shipper writes them.
    pub const ALL: [ContainerField; 6] = [
        ContainerField::Stream,
        ContainerField::KubernetesNamespace,
        ContainerField::KubernetesPodName,
        ContainerField::KubernetesPodUid,
        ContainerField::KubernetesContainerName,
        ContainerField::ContainerId,
    ];

    /// The field name, as written in the document.
    pub const fn name(self) -> &'static str {
        match self {
            ContainerField::Stream => field::STREAM,
            ContainerField::KubernetesNamespace => field::KUBERNETES_NAMESPACE,
            ContainerField::KubernetesPodName => field::KUBERNETES_POD_NAME,
            ContainerField::KubernetesPodUid => field::KUBERNETES_POD_UID,
            ContainerField::KubernetesContainerName => field::KUBERNETES_CONTAINER_NAME,
            ContainerField::ContainerId => field::CONTAINER_ID,
        }
    }

    /// The field called `name`, if the shipper adds one by that name to container lines.
    pub fn from_name(name: &str) -> Option<ContainerField> {
        // A `match` on the string (length first, then bytes): this runs for every key of
        // every container line.
        match name {
            field::STREAM => Some(ContainerField::Stream),
            field::KUBERNETES_NAMESPACE => Some(ContainerField::KubernetesNamespace),
            field::KUBERNETES_POD_NAME => Some(ContainerField::KubernetesPodName),
            field::KUBERNETES_POD_UID => Some(ContainerField::KubernetesPodUid),
            field::KUBERNETES_CONTAINER_NAME => Some(ContainerField::KubernetesContainerName),
            field::CONTAINER_ID => Some(ContainerField::ContainerId),
            _ => None,
        }
    }

    /// Position in [`ContainerField::ALL`], below 16: a bit number for sets of these fields.
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_field_once_at_its_own_index_and_apart_from_the_others() {
        for (i, c) in ContainerField::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i, "{c:?}");
            assert_eq!(ContainerField::from_name(c.name()), Some(c));
            assert_eq!(crate::Enriched::from_name(c.name()), None, "{c:?}");
            assert!(!crate::field::SERVICE_FIELDS.contains(&c.name()), "{c:?}");
        }
        assert_eq!(ContainerField::from_name(field::HOST_NAME), None);
        assert!(ContainerField::ALL.len() <= 16);
    }
}
