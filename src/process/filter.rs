//! The seccomp filter a container process gets: compiled from the bundle by the runtime,
//! installed by the process itself right before exec.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::namespaces::Plan;
use crate::seccomp::{self, Annotations, CompileOptions, SeccompError};

pub struct SeccompSetup {
    pub program: seccomp::Program,
    /// Connected seccomp agent socket for SCMP_ACT_NOTIFY profiles.
    pub agent: Option<OwnedFd>,
    pub listener_path: String,
    pub metadata: Option<String>,
}

impl SeccompSetup {
    /// Compile the bundle's `linux.seccomp` with the annotations' options; None when the
    /// bundle has no seccomp section. Warnings and merges are logged here, once.
    pub fn prepare(
        spec: &Spec,
        annotations: &HashMap<String, String>,
    ) -> Result<Option<SeccompSetup>, SeccompError> {
        let ann = Annotations::parse(annotations)?;
        let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
            return Ok(None);
        };
        let opts = CompileOptions {
            builtin: ann.builtin.clone(),
            new_netns: Plan::from_spec(spec).creates(LinuxNamespaceType::Network),
            ..CompileOptions::default()
        };
        let program = seccomp::compile(s, &opts)?;
        for w in &program.warnings {
            crate::warn!("{w}");
        }
        for d in &program.debug {
            crate::debug!("{d}");
        }
        let listener_path = s
            .listener_path()
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let agent = if program.uses_notify {
            Some(seccomp::connect_agent(&listener_path)?)
        } else {
            None
        };
        Ok(Some(SeccompSetup {
            program,
            agent,
            listener_path,
            metadata: s.listener_metadata().clone(),
        }))
    }

    /// Load the filter into this process; hand the notify listener to the agent if any.
    pub fn install(&self, state_json: &[u8]) -> Result<(), SeccompError> {
        let listener = seccomp::install(&self.program)?;
        if let (Some(l), Some(agent)) = (listener, self.agent.as_ref()) {
            seccomp::send_listener(
                agent,
                &self.listener_path,
                l,
                self.metadata.as_deref(),
                state_json,
            )?;
        }
        Ok(())
    }
}
