//! What kubelet's log directory layout says about a file, without asking the API server.
//!
//! kubelet writes each container's log to
//! `/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart>.log` (rotated to
//! `<restart>.log.<YYYYMMDD-hhmmss>`, older ones gzipped), and links
//! `/var/log/containers/<pod>_<namespace>_<container>-<container id>.log` to it. Names of
//! namespaces and pods are DNS labels or subdomains and container names DNS labels, none of
//! which may hold `_`, so `_` separates the parts without ambiguity. Labels, annotations and
//! the node name need the API server and are not known here.

use std::path::Path;

/// The pod and container a log file belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PodLog {
    pub(crate) namespace: String,
    pub(crate) pod_name: String,
    pub(crate) pod_uid: Option<String>,
    pub(crate) container_name: String,
    pub(crate) container_id: Option<String>,
}

/// The pod and container of the file at `path`, if it lies in kubelet's layout. A link of
/// `/var/log/containers` is read (one `readlink`) for the pod's uid.
pub(crate) fn pod_log(path: &Path) -> Option<PodLog> {
    if let Some(found) = under_pods(path) {
        return Some(found);
    }
    let mut found = under_containers(path)?;
    if let Ok(target) = std::fs::read_link(path) {
        if let Some(pods) = under_pods(&target) {
            found.pod_uid = pods.pod_uid;
        }
    }
    Some(found)
}

/// `.../<namespace>_<pod>_<uid>/<container>/<restart>.log[.<rotation>]`.
fn under_pods(path: &Path) -> Option<PodLog> {
    let name = path.file_name()?.to_str()?;
    let (restart, _) = name.split_once(".log")?;
    if restart.is_empty() || !restart.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let container_dir = path.parent()?;
    let container = container_dir.file_name()?.to_str()?;
    let pod_dir = container_dir.parent()?.file_name()?.to_str()?;
    let mut parts = pod_dir.split('_');
    let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || [namespace, pod, uid, container]
            .iter()
            .any(|p| p.is_empty())
    {
        return None;
    }
    Some(PodLog {
        namespace: namespace.to_string(),
        pod_name: pod.to_string(),
        pod_uid: Some(uid.to_string()),
        container_name: container.to_string(),
        container_id: None,
    })
}

/// `.../containers/<pod>_<namespace>_<container>-<64 hex digits>.log`.
fn under_containers(path: &Path) -> Option<PodLog> {
    let name = path.file_name()?.to_str()?.strip_suffix(".log")?;
    let (rest, id) = name.rsplit_once('-')?;
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut parts = rest.split('_');
    let (pod, namespace, container) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [pod, namespace, container].iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(PodLog {
        namespace: namespace.to_string(),
        pod_name: pod.to_string(),
        pod_uid: None,
        container_name: container.to_string(),
        container_id: Some(id.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5d0b0d7c1b9e8a4c3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a";

    #[test]
    fn kubelet_s_pod_directories_name_pod_and_container() {
        let p = pod_log(Path::new(
            "/var/log/pods/shop_payment-7d9f8-x2k4q_0f1e2d3c-aaaa-bbbb-cccc-123456789abc/payment/0.log",
        ))
        .unwrap();
        assert_eq!(p.namespace, "shop");
        assert_eq!(p.pod_name, "payment-7d9f8-x2k4q");
        assert_eq!(
            p.pod_uid.as_deref(),
            Some("0f1e2d3c-aaaa-bbbb-cccc-123456789abc")
        );
        assert_eq!(p.container_name, "payment");
        assert_eq!(p.container_id, None);
        for rotated in ["3.log.20261202-153000", "3.log.20261202-153000.gz"] {
            let p = pod_log(&Path::new("/var/log/pods/a_b_c/side-car").join(rotated)).unwrap();
            assert_eq!(
                (p.namespace.as_str(), p.container_name.as_str()),
                ("a", "side-car")
            );
        }
    }

    #[test]
    fn kubelet_s_container_links_name_the_container_id_too() {
        let p = pod_log(
            &Path::new("/var/log/containers")
                .join(format!("payment-7d9f8-x2k4q_shop_payment-{ID}.log")),
        )
        .unwrap();
        assert_eq!(p.pod_name, "payment-7d9f8-x2k4q");
        assert_eq!(p.namespace, "shop");
        assert_eq!(p.container_name, "payment");
        assert_eq!(p.container_id.as_deref(), Some(ID));
    }

    #[test]
    fn the_uid_of_a_container_link_comes_from_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("pods/ns_pod_uid-1/app");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("0.log"), b"x\n").unwrap();
        let links = dir.path().join("containers");
        std::fs::create_dir(&links).unwrap();
        let link = links.join(format!("pod_ns_app-{ID}.log"));
        std::os::unix::fs::symlink(target.join("0.log"), &link).unwrap();
        let p = pod_log(&link).unwrap();
        assert_eq!(p.pod_uid.as_deref(), Some("uid-1"));
        assert_eq!(p.container_id.as_deref(), Some(ID));
    }

    #[test]
    fn other_paths_are_not_taken_for_pods() {
        for path in [
            "/var/log/didban/payment.log",
            "/var/log/didban/payment.log.1",
            "/var/log/pods/ns_pod/app/0.log",
            "/var/log/pods/ns_pod_uid_x/app/0.log",
            "/var/log/pods/ns_pod_uid/app/current.log",
            "/var/log/containers/pod_ns_app-notanid.log",
            "/var/log/containers/pod_ns-abc.log",
        ] {
            assert_eq!(pod_log(Path::new(path)), None, "{path}");
        }
    }
}
