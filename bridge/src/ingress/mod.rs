//! STUB (replaced by the ingress helper's files).
use crate::event::IngressMessage;
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct IngressError;
pub struct Ingress {
    endpoints: Vec<String>,
}
impl Ingress {
    pub fn start(
        _c: &crate::config::IngressConfig,
        _sink: Box<dyn FnMut(IngressMessage) + Send>,
    ) -> Result<Ingress, IngressError> {
        Ok(Ingress { endpoints: vec![] })
    }
    pub fn bound_endpoints(&self) -> &[String] {
        &self.endpoints
    }
    pub fn shutdown(self) {}
}
