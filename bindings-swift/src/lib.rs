//! The Proliferate client for swift: conversion, async bridging and error mapping over `proliferate-client`.
